"""Greedy generation (cached, masked, batched), latent suppression and removal, choice scoring.

Runs on every tiny backbone. Logits are compared over the finite entries (latent ids are -inf by
design); max differences go into the assertion messages.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pytest
import torch

from livr_core.configs import GenerationConfig, MaskVariant
from livr_core.encoding import Sample
from livr_core.inference import generate, score_choices
from livr_core.token_types import TokenType
from tests.livr_core.samples import random_image, two_image_sample

STEPS = 6


def _samples() -> list[Sample]:
    """Prompts of different lengths (one and two images), so batches are left-padded."""
    return [
        Sample([random_image(3, 112, 56)], "Count the dots.", None, "short"),
        two_image_sample(0, sample_id="long"),
        two_image_sample(7, sample_id="long2"),
    ]


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert np.array_equal(np.isinf(a), np.isinf(b))
    finite = np.isfinite(a)
    return float(np.abs(a[finite] - b[finite]).max())


@contextmanager
def _logit_bias(model: torch.nn.Module, ids: list[int], bias: float) -> Iterator[None]:
    """Add `bias` to the output logits of `ids` (a model that badly wants to emit them)."""

    def hook(module, args, output):
        output[..., ids] += bias
        return output

    handle = model.get_output_embeddings().register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@pytest.mark.parametrize("mask", [MaskVariant.CAUSAL, MaskVariant.BOTTLENECK])
def test_cached_decoding_equals_recomputation_and_batching(prepare, backbone_name, mask) -> None:
    backbone, _, encoder = prepare(backbone_name)
    config = GenerationConfig(max_new_tokens=STEPS, mask=mask, return_logits=True)
    args = (backbone.model, backbone.adapter, encoder)
    cached = generate(*args, _samples(), config)
    recomputed = generate(*args, _samples(), replace(config, use_cache=False))
    for c, r in zip(cached, recomputed):
        assert c.token_ids == r.token_ids and len(c.logits) == STEPS
        diff = _max_diff(c.logits, r.logits)
        assert diff <= 1e-5, f"{mask.value} cached vs recomputed, {c.id}: max diff {diff}"
    for c, sample in zip(cached, _samples()):
        alone = generate(*args, [sample], config)[0]
        assert alone.token_ids == c.token_ids and alone.text == c.text
        diff = _max_diff(c.logits, alone.logits)
        assert diff <= 1e-5, f"{mask.value} batched vs alone, {c.id}: max diff {diff}"


def test_the_bottleneck_at_test_time_changes_the_answer_logits(prepare) -> None:
    backbone, _, encoder = prepare("tiny-qwen2.5-vl")
    args = (backbone.model, backbone.adapter, encoder, _samples()[:1])
    causal = generate(*args, GenerationConfig(max_new_tokens=1, return_logits=True))[0]
    masked = generate(
        *args, GenerationConfig(max_new_tokens=1, mask=MaskVariant.BOTTLENECK, return_logits=True)
    )[0]
    assert _max_diff(causal.logits, masked.logits) > 1e-4


def test_latent_ids_are_never_generated(prepare, backbone_name) -> None:
    backbone, latents, encoder = prepare(backbone_name)
    with _logit_bias(backbone.model, list(latents.ids), 1e4):
        out = generate(
            backbone.model,
            backbone.adapter,
            encoder,
            _samples()[:2],
            GenerationConfig(max_new_tokens=3, return_logits=True),
        )
    for generation in out:
        assert len(generation.token_ids) == 3
        assert not set(generation.token_ids) & set(latents.ids)
        assert np.isneginf(generation.logits[:, list(latents.ids)]).all()
        assert generation.token_ids == generation.logits.argmax(-1).tolist()


def test_generation_stops_at_the_end_of_turn(prepare) -> None:
    backbone, _, encoder = prepare("tiny-qwen2.5-vl")
    answer_ids = backbone.tokenizer("(B)", add_special_tokens=False)["input_ids"]
    config = GenerationConfig(max_new_tokens=8, return_logits=True)
    args = (backbone.model, backbone.adapter, encoder, _samples()[:2])
    with _logit_bias(backbone.model, [encoder.end_of_turn_id], 1e4):
        stopped = generate(*args, config)
    assert [(g.text, g.token_ids, len(g.logits)) for g in stopped] == [("", [], 1)] * 2
    # a model that says "(B)" then ends its turn: the answer text is exactly "(B)"
    step = {"n": 0}

    def scripted(module, args, output):
        wanted = [*answer_ids, encoder.end_of_turn_id][min(step["n"], len(answer_ids))]
        output[:, -1, wanted] += 1e4
        step["n"] += 1
        return output

    handle = backbone.model.get_output_embeddings().register_forward_hook(scripted)
    try:
        scripted_out = generate(*args[:3], args[3][:1], config)[0]
    finally:
        handle.remove()
    assert scripted_out.text == "(B)" and scripted_out.token_ids == answer_ids


def test_latents_removed_mode_encodes_no_latents(prepare, backbone_name) -> None:
    backbone, latents, encoder = prepare(backbone_name)
    plain = encoder.without_latents()
    encoded = plain.encode(_samples()[1], with_answer=False)
    assert not torch.isin(encoded.input_ids, torch.tensor(latents.ids)).any()
    assert not (encoded.token_types == TokenType.LATENT).any()
    assert encoder.latents is latents  # the original encoder is untouched
    args = (backbone.model, backbone.adapter)
    config = GenerationConfig(max_new_tokens=2, return_logits=True)
    removed = generate(*args, encoder, _samples(), replace(config, remove_latents=True))
    explicit = generate(*args, plain, _samples(), config)
    with_latents = generate(*args, encoder, _samples(), config)
    # the plain encoder knows no latent ids to suppress; compare the other vocabulary entries
    keep = np.ones(removed[0].logits.shape[1], dtype=bool)
    keep[list(latents.ids)] = False
    for r, e, w in zip(removed, explicit, with_latents):
        assert r.token_ids == e.token_ids
        assert _max_diff(r.logits[:, keep], e.logits[:, keep]) == 0.0
        assert _max_diff(r.logits, w.logits) > 1e-4  # the latents carry information


def test_choice_scores_are_option_log_likelihoods(prepare, backbone_name) -> None:
    backbone, _, encoder = prepare(backbone_name)
    args = (backbone.model, backbone.adapter, encoder, two_image_sample(0))
    choices = ["(A)", "(B) the right one", "7"]
    scores = score_choices(*args, choices)
    assert scores.shape == (3,) and (scores < 0).all()
    for choice, score in zip(choices, scores):  # right-padded batch of options == one at a time
        assert abs(score_choices(*args, [choice])[0] - score) <= 1e-4
    lengths = [len(backbone.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in choices]
    np.testing.assert_allclose(
        score_choices(*args, choices, normalize=True), scores / lengths, rtol=1e-6
    )
    favoured = backbone.tokenizer("7", add_special_tokens=False)["input_ids"]
    with _logit_bias(backbone.model, favoured, 50.0):
        assert int(np.argmax(score_choices(*args, choices))) == 2
