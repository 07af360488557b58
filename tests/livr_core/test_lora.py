"""What is trained: LoRA on the language model only plus exactly the K latent rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import PeftModel

from livr_core.backbones import load_backbone
from livr_core.configs import FinetuneConfig, LatentConfig, MaskVariant
from livr_core.latents import add_latent_tokens
from livr_core.lora import apply_finetuning, param_groups
from livr_core.model_inputs import forward_inputs
from tests.livr_core.samples import two_image_sample

VISION = (".visual.", ".vision_tower.", ".multi_modal_projector.")


def _is_vision(name: str) -> bool:
    return any(part in f".{name}" for part in VISION)


def _train_step(model, backbone, batch) -> None:
    """One AdamW step with the paper's weight decay under the stage-1 mask."""
    optimizer = torch.optim.AdamW(param_groups(model, weight_decay=0.01), lr=1e-2)
    inputs = forward_inputs(model, backbone.adapter, batch, MaskVariant.BOTTLENECK)
    model(**inputs, labels=batch.labels, use_cache=False).loss.backward()
    optimizer.step()


def _effective_embedding(model, rows: int) -> torch.Tensor:
    with torch.no_grad():
        return model.get_input_embeddings()(torch.arange(rows)).clone()


def test_a_step_changes_only_lora_and_the_latent_rows(prepare, backbone_name) -> None:
    backbone, latents, encoder = prepare(backbone_name)
    batch = encoder([two_image_sample(0)])
    rows = backbone.model.get_input_embeddings().weight.shape[0]
    # peft keeps the original Parameter objects (wrapped modules move under base_layer)
    base = [(n, p, p.detach().clone()) for n, p in backbone.model.named_parameters()]
    model = apply_finetuning(backbone, latents)
    embedding_before = _effective_embedding(model, rows)
    trainable_before = {
        n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad
    }
    _train_step(model, backbone, batch)

    # every trainable tensor is LoRA or the K x d latent delta, and all of them moved
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert "lora_" in name or "trainable_tokens_delta" in name, name
            assert not torch.equal(param, trainable_before[name]), f"{name} did not change"
    delta = [p for n, p in model.named_parameters() if "trainable_tokens_delta" in n]
    assert len(delta) == 1 and delta[0].shape == (len(latents.ids), embedding_before.shape[1])
    # every base weight, the embedding (= tied lm_head) matrix included, is bit-identical
    for name, param, before in base:
        assert torch.equal(param, before), name
    # the effective embedding differs from before in exactly the latent rows
    changed = (_effective_embedding(model, rows) != embedding_before).any(-1)
    assert changed.nonzero().flatten().tolist() == list(latents.ids)
    # the tied output head applies the same updated rows
    hidden = torch.randn(1, 1, embedding_before.shape[1])
    with torch.no_grad():
        head = model.get_output_embeddings()(hidden)[0, 0]
    assert torch.allclose(head, _effective_embedding(model, rows) @ hidden[0, 0], atol=1e-6)


def test_no_adapter_on_any_vision_module(prepare, backbone_name) -> None:
    backbone, latents, _ = prepare(backbone_name)
    model = apply_finetuning(backbone, latents)
    adapted = [n for n, m in model.named_modules() if hasattr(m, "lora_A")]
    assert len(adapted) == 7 * backbone.model.config.get_text_config().num_hidden_layers
    assert not [n for n in adapted if _is_vision(n)]
    assert not [n for n, p in model.named_parameters() if p.requires_grad and _is_vision(n)]


def test_adapter_save_and_load_reproduces_logits_exactly(
    prepare, backbone_name, tmp_path: Path
) -> None:
    backbone, latents, encoder = prepare(backbone_name)
    batch = encoder([two_image_sample(0)])
    model = apply_finetuning(backbone, latents)
    _train_step(model, backbone, batch)
    model.eval()
    inputs = forward_inputs(model, backbone.adapter, batch, MaskVariant.BOTTLENECK)
    with torch.no_grad():
        expected = model(**inputs).logits
    model.save_pretrained(tmp_path)

    fresh = load_backbone(backbone_name)  # same seed: the same base weights
    add_latent_tokens(fresh, LatentConfig(k=len(latents.ids)))
    reloaded = PeftModel.from_pretrained(fresh.model, tmp_path).eval()
    with torch.no_grad():
        actual = reloaded(
            **forward_inputs(reloaded, fresh.adapter, batch, MaskVariant.BOTTLENECK)
        ).logits
    assert torch.equal(actual, expected)


def test_direct_sft_trains_lora_only(prepare) -> None:
    backbone, _, _ = prepare("tiny-qwen2.5-vl")
    model = apply_finetuning(backbone, None)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


@pytest.mark.parametrize("with_latents", [True, False])
def test_full_mode_trains_the_language_model_and_latent_rows_only(prepare, with_latents) -> None:
    backbone, latents, _ = prepare("tiny-qwen2.5-vl")
    model = apply_finetuning(
        backbone, latents if with_latents else None, FinetuneConfig(mode="full")
    )
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    layers = [n for n in trainable if ".language_model.layers." in n]
    assert len(layers) == sum(
        1 for n, _ in backbone.model.named_parameters() if ".language_model.layers." in f".{n}"
    )
    assert not [n for n in trainable if _is_vision(n)]
    embedding = [n for n in trainable if "embed_tokens" in n]
    assert embedding == (
        [n for n in trainable if "trainable_tokens_delta" in n] if with_latents else []
    )
    if with_latents:  # the tied output head follows the latent delta in full mode too
        rows = backbone.model.get_input_embeddings().weight.shape[0]
        with torch.no_grad():
            next(p for n, p in model.named_parameters() if "trainable_tokens_delta" in n).add_(1.0)
            hidden = torch.randn(1, 1, backbone.model.config.get_text_config().hidden_size)
            head = model.get_output_embeddings()(hidden)[0, 0]
        assert torch.allclose(head, _effective_embedding(model, rows) @ hidden[0, 0], atol=1e-6)
    groups = param_groups(model, weight_decay=0.01)
    assert all(p.ndim < 2 for p in groups[1]["params"]) and groups[1]["weight_decay"] == 0.0


def test_latent_rows_mode_trains_exactly_the_latent_rows(prepare) -> None:
    """Prompt tuning: one step moves the K latent rows and no other weight, no LoRA exists."""
    backbone, latents, encoder = prepare("tiny-qwen2.5-vl")
    model = apply_finetuning(backbone, latents, FinetuneConfig(mode="latent_rows"))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("trainable_tokens_delta" in n for n in trainable)
    rows = backbone.model.get_input_embeddings().weight.shape[0]
    before = _effective_embedding(model, rows)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    _train_step(model, backbone, encoder([two_image_sample(0)]))
    after = _effective_embedding(model, rows)
    changed = torch.nonzero((after != before).any(dim=1)).flatten().tolist()
    assert changed == list(latents.ids)
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)


def test_latent_rows_mode_without_latents_names_the_fix(prepare) -> None:
    backbone, _, _ = prepare("tiny-qwen2.5-vl")
    with pytest.raises(ValueError, match="add_latent_tokens first"):
        apply_finetuning(backbone, None, FinetuneConfig(mode="latent_rows"))
    with pytest.raises(ValueError, match="lora, full or latent_rows"):
        FinetuneConfig(mode="prefix")  # type: ignore[arg-type]


def test_lora_initialisation_depends_on_the_config_seed_only(prepare) -> None:
    def lora_a(seed: int, global_seed: int) -> list[torch.Tensor]:
        backbone, latents, _ = prepare("tiny-qwen2.5-vl")
        torch.manual_seed(global_seed)
        model = apply_finetuning(backbone, latents, FinetuneConfig(seed=seed))
        return [p.detach().clone() for n, p in model.named_parameters() if "lora_A" in n]

    reference = lora_a(42, 0)
    assert all(torch.equal(a, b) for a, b in zip(reference, lora_a(42, 1)))
    assert not all(torch.equal(a, b) for a, b in zip(reference, lora_a(7, 0)))
