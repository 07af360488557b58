"""A LIVR model exported as a stock Hugging Face checkpoint answers token for token like the
toolkit: loaded with `AutoModelForImageTextToText` + `AutoProcessor` only, prompted as
`livr.json` says, decoded with `generate` and the exported generation config."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForImageTextToText, AutoProcessor

from livr_core.backbones.base import unwrap
from livr_core.configs import FinetuneConfig, GenerationConfig
from livr_core.export import LIVR_INFO, export_pretrained, read_livr_info, vllm_layout_problems
from livr_core.inference import generate
from livr_core.lora import apply_finetuning
from tests.livr_core.samples import two_image_sample

NEW_TOKENS = 6


def _trained_like(backbone, latents, mode: str = "lora"):
    """Fine-tuned model whose every trainable tensor moved far from its start (so a merge that
    dropped LoRA, the latent rows or the tied head would change the answers)."""
    model = apply_finetuning(backbone, latents, FinetuneConfig(mode=mode))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=generator) * 0.5)
    return model


def _stock_generate(directory, samples) -> list[list[int]]:
    """What a user of the export runs: stock classes, the chat template, the suffix."""
    model = AutoModelForImageTextToText.from_pretrained(directory).eval()
    processor = AutoProcessor.from_pretrained(directory)
    suffix = read_livr_info(directory)["latent_sequence"]
    out = []
    for sample in samples:
        content = [{"type": "image"} for _ in sample.images]
        content.append({"type": "text", "text": sample.prompt + suffix})
        text = processor.apply_chat_template([{"role": "user", "content": content}],
                                             add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[text], images=list(sample.images), return_tensors="pt")
        with torch.no_grad():
            ids = model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)
        new = ids[0, inputs["input_ids"].shape[1]:].tolist()
        stops = set(model.generation_config.eos_token_id if isinstance(
            model.generation_config.eos_token_id, list) else [model.generation_config.eos_token_id])
        out.append([t for t in new[: next((i for i, t in enumerate(new) if t in stops),
                                          len(new))]])
    return out


@pytest.mark.parametrize("backbone_name", ["tiny-qwen2.5-vl", "tiny-qwen3-vl", "tiny-llava"])
def test_export_generates_token_for_token_like_the_toolkit(prepare, backbone_name, tmp_path):
    backbone, latents, encoder = prepare(backbone_name)
    model = _trained_like(backbone, latents)
    samples = [two_image_sample(s, sample_id=f"s{s}") for s in (0, 7)]
    ours = generate(model, backbone.adapter, encoder, samples,
                    GenerationConfig(max_new_tokens=NEW_TOKENS, batch_size=1))
    out = export_pretrained(model, backbone, latents, tmp_path / "export",
                            training={"method": "livr"})
    assert _stock_generate(out, samples) == [g.token_ids for g in ours]
    info = json.loads((out / LIVR_INFO).read_text())
    assert info["k"] == latents.k and info["latent_ids"] == list(latents.ids)
    assert info["latent_sequence"] == latents.sequence and info["training"] == {"method": "livr"}
    generation = json.loads((out / "generation_config.json").read_text())
    assert set(latents.ids) <= set(generation["suppress_tokens"])
    # The latent tokens are single special tokens of the exported tokenizer.
    tokenizer = AutoProcessor.from_pretrained(out).tokenizer
    assert tokenizer(latents.sequence, add_special_tokens=False)["input_ids"] == \
        [latents.ids[i % len(latents.ids)] for i in range(latents.k)]
    assert vllm_layout_problems(out) == []


def test_merged_weights_carry_the_trained_latent_rows(prepare, tmp_path):
    backbone, latents, _ = prepare("tiny-qwen2.5-vl")
    model = _trained_like(backbone, latents)
    # The rows the model uses at inference: the merged embedding of the peft model.
    merged_rows = unwrap(model).get_input_embeddings()(torch.tensor(latents.ids)).detach().clone()
    out = export_pretrained(model, backbone, latents, tmp_path / "export")
    with safe_open(str(out / "model.safetensors"), framework="pt") as handle:
        key = next(k for k in handle.keys() if k.endswith("embed_tokens.weight"))  # noqa: SIM118
        saved = handle.get_tensor(key)
    assert torch.equal(saved[list(latents.ids)], merged_rows)


def test_export_refuses_a_non_empty_folder_and_leaves_it_alone(prepare, tmp_path):
    backbone, latents, _ = prepare("tiny-qwen2.5-vl")
    out = tmp_path / "export"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_pretrained(backbone.model, backbone, latents, out)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert not list(tmp_path.glob(".export.*"))


def test_vllm_layout_check_names_what_vllm_would_reject(prepare, tmp_path):
    backbone, latents, _ = prepare("tiny-qwen2.5-vl")
    out = export_pretrained(_trained_like(backbone, latents), backbone, latents, tmp_path / "e")
    assert vllm_layout_problems(out) == []
    config = json.loads((out / "config.json").read_text())
    config["architectures"] = ["SomethingElse"]
    (out / "config.json").write_text(json.dumps(config))
    info = json.loads((out / LIVR_INFO).read_text())
    info["latent_ids"] = [1, 2, 3, 4]
    (out / LIVR_INFO).write_text(json.dumps(info))
    problems = vllm_layout_problems(out)
    assert any("architectures ['SomethingElse']" in p for p in problems)
    assert any("livr.json latent ids [1, 2, 3, 4]" in p for p in problems)


@pytest.mark.parametrize("mode,with_latents", [("full", True), ("latent_rows", True),
                                               ("lora", False)])
def test_every_finetuning_mode_exports_exactly(prepare, tmp_path, mode, with_latents):
    """Full fine-tuning (no peft), prompt tuning (latent rows only) and direct SFT (no latents)."""
    backbone, latents, encoder = prepare("tiny-qwen2.5-vl")
    if not with_latents:
        latents, encoder = None, encoder.without_latents()
    model = _trained_like(backbone, latents, mode)
    samples = [two_image_sample(3, sample_id="s")]
    ours = generate(model, backbone.adapter, encoder, samples,
                    GenerationConfig(max_new_tokens=NEW_TOKENS, batch_size=1))
    out = export_pretrained(model, backbone, latents, tmp_path / "export")
    assert _stock_generate(out, samples) == [ours[0].token_ids]
    info = read_livr_info(out)
    assert info["k"] == (latents.k if latents else 0)
    assert info["latent_sequence"] == (latents.sequence if latents else "")
