"""Mirage's objective and latent feedback: the layout, the pooled helper targets, the stage-1
gradient (reaches the latent states, never the vision tower), stage 2 and inference without any
helper image, and the truncated-pass feedback equal to Mirage's one-latent-at-a-time KV-cache
loop."""

from __future__ import annotations

import pytest
import torch

from livr_core.backbones import load_backbone
from livr_core.configs import (
    EncodingConfig,
    FinetuneConfig,
    GenerationConfig,
    LatentConfig,
    MaskVariant,
    MirageConfig,
    TrainConfig,
)
from livr_core.encoding import IGNORE_INDEX, Encoder, Sample
from livr_core.inference import generate
from livr_core.latents import add_latent_tokens
from livr_core.lora import apply_finetuning
from livr_core.mirage import (
    MirageLatents,
    MirageObjective,
    _final_hidden,
    feedback_values,
    latent_positions,
    pool_to_k,
)
from livr_core.model_inputs import forward_inputs, position_ids
from livr_core.token_types import TokenType
from livr_core.trainer import Trainer
from tests.livr_core.samples import random_image

K = 4


def _mirage(name: str = "tiny-qwen2.5-vl"):
    backbone = load_backbone(name)
    latents = add_latent_tokens(backbone, LatentConfig(k=K, shared=True, markers=True))
    encoder = Encoder(backbone, latents, EncodingConfig(latent_position="answer_start"))
    model = apply_finetuning(backbone, latents, FinetuneConfig(mode="full"))
    return backbone, latents, encoder, model


def _samples(n: int = 2) -> list[Sample]:
    # different prompt lengths, so right padding puts the latents at different columns
    return [Sample([random_image(i)], "Map: <image>\nPlan?" + " go" * i, "\\boxed{LEFT}", f"s{i}")
            for i in range(n)]


class NoHelpers(dict):
    def __getitem__(self, key):
        raise AssertionError(f"helper {key!r} was read")

    def __contains__(self, key):
        raise AssertionError(f"helper {key!r} was looked up")


def test_layout_markers_open_the_answer_and_are_supervised():
    _, latents, encoder, _ = _mirage()
    batch = encoder(_samples())
    text = encoder.tokenizer.decode(batch.input_ids[0])
    assert "<|im_start|>assistant\n<|latent_start|>" + "<|latent_0|>" * K + "<|latent_end|>" \
        "\\boxed{LEFT}<|im_end|>" in text
    for row in range(2):
        positions = latent_positions(batch.token_types[row : row + 1])[0]
        assert (positions[1:] - positions[:-1]).tolist() == [1] * (K - 1)
        start, end = int(positions[0]) - 1, int(positions[-1]) + 1
        assert (batch.labels[row, positions] == IGNORE_INDEX).all()
        assert batch.labels[row, start] == latents.marker_ids[0]
        assert batch.labels[row, end] == latents.marker_ids[1]
        assert int(batch.token_types[row, start]) == TokenType.TEXT
    prompt = encoder.encode(_samples()[0], with_answer=False)
    assert (prompt.labels == IGNORE_INDEX).all()
    assert encoder.tokenizer.decode(prompt.input_ids).endswith("<|latent_end|>")
    # the map sits where the prompt's <image> placeholder was, not before the text
    assert text.index("Map: ") < text.index("<|vision_start|>") < text.index("Plan?")


def test_pool_to_k_drops_the_remainder_and_averages_contiguous_groups():
    features = torch.arange(22, dtype=torch.float32)[:, None].repeat(1, 3)
    pooled = pool_to_k(features, 4)  # 22 tokens: the last 2 dropped, groups of 5
    assert pooled[:, 0].tolist() == [2.0, 7.0, 12.0, 17.0]
    with pytest.raises(ValueError, match="cannot be pooled to 4 latents"):
        pool_to_k(features[:3], 4)


def test_stage1_teacher_forces_the_helper_and_its_gradient_reaches_the_latent_states():
    backbone, _, encoder, model = _mirage()
    samples = _samples()
    helpers = {s.id: random_image(100 + i, 112, 84) for i, s in enumerate(samples)}
    objective = MirageObjective(backbone.adapter, backbone.processor, helpers)
    batch = encoder(samples)
    inputs = forward_inputs(model, backbone.adapter, batch, MaskVariant.CAUSAL)
    embedded, states = [], []

    def keep_state(module, args):
        args[0].retain_grad()
        states.append(args[0])

    def keep_input(module, args, kwargs):  # the first layer's input: the merged embeddings
        embedded.append(kwargs.get("hidden_states", args[0] if args else None))

    first_layer = model.get_base_model().model.language_model.layers[0]
    hooks = [first_layer.register_forward_pre_hook(keep_input, with_kwargs=True),
             model.get_base_model().get_output_embeddings().register_forward_pre_hook(keep_state)]
    loss = objective(model, inputs, batch, stage=0)
    loss.backward()
    for h in hooks:
        h.remove()
    # the pooled helper embeddings: the vision tower's own tokens for each helper, K groups
    vision = backbone.processor.image_processor(images=list(helpers.values()), return_tensors="pt")
    tokens = model.get_base_model().get_image_features(**vision).pooler_output
    positions = latent_positions(batch.token_types)
    for row, feats in enumerate(tokens):
        assert torch.allclose(embedded[0][row, positions[row]], pool_to_k(feats, K), atol=1e-6)
    grad = states[0].grad
    before = positions - 1  # h_{p_k - 1} predicts latent k
    assert all(grad[r, before[r]].abs().sum(-1).min() > 0 for r in range(2))
    vision_params = [p for n, p in model.named_parameters() if ".visual." in n]
    assert vision_params and all(p.grad is None and not p.requires_grad for p in vision_params)
    trained = [n for n, p in model.named_parameters() if p.grad is not None]
    assert any("trainable_tokens" in n for n in trained)  # the marker rows learn
    assert objective.fingerprint() == {"mirage": {"ce_weight": MirageConfig().ce_weight}}


def test_stage2_and_inference_read_no_helper():
    backbone, _, encoder, model = _mirage()
    samples = _samples()
    objective = MirageObjective(backbone.adapter, backbone.processor, NoHelpers())
    batch = encoder(samples)
    inputs = forward_inputs(model, backbone.adapter, batch, MaskVariant.CAUSAL)
    loss = objective(model, inputs, batch, stage=1)
    loss.backward()
    assert torch.isfinite(loss)
    with pytest.raises(AssertionError, match="was looked up"):
        objective(model, inputs, batch, stage=0)
    config = GenerationConfig(max_new_tokens=4)
    cached = generate(model, backbone.adapter, encoder, samples, config, MirageLatents())
    full = generate(model, backbone.adapter, encoder, samples,
                    GenerationConfig(max_new_tokens=4, use_cache=False), MirageLatents())
    single = [generate(model, backbone.adapter, encoder, [s], config, MirageLatents())[0]
              for s in samples]
    assert [g.token_ids for g in cached] == [g.token_ids for g in full] \
        == [g.token_ids for g in single]


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-llava"])
def test_feedback_equals_the_one_latent_at_a_time_cache_loop(name):
    """Mirage's loop: run the prefix, then feed each latent's previous hidden state as the next
    input embedding through the KV cache. The truncated passes must give the same values."""
    backbone, _, encoder, model = _mirage(name)
    model.eval()
    sample = _samples(1)[0]
    seq = encoder.collate([encoder.encode(sample, with_answer=False)], padding_side="left")
    inputs = forward_inputs(model, backbone.adapter, seq, MaskVariant.CAUSAL)
    pos = position_ids(model, backbone.adapter, seq)
    inputs["position_ids"] = pos
    positions = latent_positions(seq.token_types)
    with torch.no_grad():
        ours = feedback_values(model, inputs, positions)
        first = int(positions[0, 0])
        prefix = {k: (v[..., :first] if k in ("input_ids", "attention_mask", "position_ids",
                                                "mm_token_type_ids") else v)
                  for k, v in inputs.items()}
        with _final_hidden(model) as hidden:
            out = model(**prefix, use_cache=True)
        cache, h, reference = out.past_key_values, hidden[-1][:, -1:], []
        for j in range(K):
            reference.append(h[0, 0])
            column = first + j
            with _final_hidden(model) as hidden:
                out = model(inputs_embeds=h, past_key_values=cache, use_cache=True,
                            attention_mask=inputs["attention_mask"][:, : column + 1],
                            position_ids=pos[..., column : column + 1])
            cache, h = out.past_key_values, hidden[-1]
    assert torch.allclose(ours, torch.stack(reference), atol=1e-5)


def test_trainer_runs_the_objective_and_refuses_a_causal_stage1_without_one(tmp_path):
    backbone, _, encoder, model = _mirage()
    samples = _samples()
    config = TrainConfig(epochs=(1, 1), stage1_mask=MaskVariant.CAUSAL, select="final",
                         grad_accumulation=2, progress_bar=False, lr=1e-3)
    with pytest.raises(ValueError, match="pass an objective of its own"):
        Trainer(model, backbone.adapter, encoder, samples, tmp_path / "x", config)
    helpers = {s.id: random_image(7, 84, 84) for s in samples}
    objective = MirageObjective(backbone.adapter, backbone.processor, helpers)
    trainer = Trainer(model, backbone.adapter, encoder, samples, tmp_path / "run", config,
                      objective=objective)
    result = trainer.fit()
    assert [(h["stage"], h["epoch"]) for h in result.history] == [(1, 1), (2, 1)]
    assert trainer.fingerprint()["objective"] == {"mirage": {"ce_weight": 0.1}}
