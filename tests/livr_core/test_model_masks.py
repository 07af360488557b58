"""The masks on real (tiny) architectures: the bottleneck holds exactly, the 4D path is exact.

Every test runs on all tiny backbones (Qwen2.5-VL, Qwen3-VL with deepstack, LLaVA). Two samples
differ only in their pixels (same image sizes, so the same positions); logits are compared per
token type. Max differences are recorded in the assertion messages.
"""

from __future__ import annotations

import pytest
import torch

from livr_core.configs import MaskRules, MaskVariant
from livr_core.encoding import Sample
from livr_core.model_inputs import forward_inputs
from livr_core.token_types import TEXT_TYPES, TokenType
from tests.livr_core.samples import random_image, two_image_sample

SEALED = MaskRules(text_from_image=True, answer_from_image=True, latent_from_image=True)


def _logits(backbone, encoder, samples, variant, dense: bool = False, padding_side="right"):
    batch = encoder.collate([encoder.encode(s) for s in samples], padding_side)
    with torch.no_grad():
        out = backbone.model(
            **forward_inputs(backbone.model, backbone.adapter, batch, variant, dense=dense)
        )
    return out.logits, batch


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def test_sealed_bottleneck_makes_answers_bit_identical_across_images(
    prepare, backbone_name
) -> None:
    backbone, _, encoder = prepare(backbone_name)
    first, batch = _logits(backbone, encoder, [two_image_sample(0)], SEALED)
    second, _ = _logits(backbone, encoder, [two_image_sample(10)], SEALED)
    answer = batch.token_types[0] == TokenType.ANSWER
    assert torch.equal(first[0, answer], second[0, answer])
    # the pixels do matter without the seal, so the check above can fail
    open_first, _ = _logits(backbone, encoder, [two_image_sample(0)], MaskVariant.CAUSAL)
    open_second, _ = _logits(backbone, encoder, [two_image_sample(10)], MaskVariant.CAUSAL)
    assert _max_diff(open_first[0, answer], open_second[0, answer]) > 1e-4


def test_livr_bottleneck_keeps_the_prompt_image_free_and_routes_through_latents(
    prepare, backbone_name
) -> None:
    backbone, _, encoder = prepare(backbone_name)
    first, batch = _logits(backbone, encoder, [two_image_sample(0)], MaskVariant.BOTTLENECK)
    second, _ = _logits(backbone, encoder, [two_image_sample(10)], MaskVariant.BOTTLENECK)
    types = batch.token_types[0]
    first_latent = int((types == TokenType.LATENT).nonzero().min())
    prompt = torch.isin(types, torch.tensor(TEXT_TYPES)) & (torch.arange(len(types)) < first_latent)
    assert torch.equal(first[0, prompt], second[0, prompt])
    for kind in (TokenType.LATENT, TokenType.ANSWER):
        diff = _max_diff(first[0, types == kind], second[0, types == kind])
        assert diff > 1e-4, f"{kind.name} logits do not depend on the image (max diff {diff})"


def test_dense_causal_mask_equals_the_models_own_2d_path(prepare, backbone_name) -> None:
    backbone, _, encoder = prepare(backbone_name)
    samples = [Sample([random_image(3)], "Count?", "7", "short"), two_image_sample(0)]
    dense, batch = _logits(backbone, encoder, samples, MaskVariant.CAUSAL, dense=True)
    native, _ = _logits(backbone, encoder, samples, MaskVariant.CAUSAL)
    real = batch.attention_mask.bool()
    diff = _max_diff(dense[real], native[real])
    assert diff <= 1e-6, f"4D causal vs 2D path: max diff {diff}"


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("variant", [MaskVariant.CAUSAL, MaskVariant.BOTTLENECK])
def test_batched_equals_unbatched(prepare, backbone_name, variant, padding_side) -> None:
    backbone, _, encoder = prepare(backbone_name)
    samples = [
        Sample([random_image(3, 112, 56)], "Count the dots.", "7", "short"),
        two_image_sample(0),
    ]
    batched, batch = _logits(backbone, encoder, samples, variant, True, padding_side)
    for row, sample in enumerate(samples):
        single, _ = _logits(backbone, encoder, [sample], variant, dense=True)
        real = batch.attention_mask[row].bool()
        assert int(real.sum()) == single.shape[1]
        diff = _max_diff(batched[row, real], single[0])
        assert diff <= 1e-5, f"{variant.value} {padding_side} row {row}: max diff {diff}"


def test_eager_additive_mask_equals_sdpa_bool_mask(prepare, backbone_name) -> None:
    backbone, _, encoder = prepare(backbone_name)
    samples = [Sample([random_image(3)], "Count?", "7", "short"), two_image_sample(0)]
    sdpa, batch = _logits(backbone, encoder, samples, MaskVariant.BOTTLENECK)
    backbone.model.set_attn_implementation("eager")
    inputs = forward_inputs(backbone.model, backbone.adapter, batch, MaskVariant.BOTTLENECK)
    assert inputs["attention_mask"].dtype == torch.float32  # additive, not bool
    with torch.no_grad():
        eager = backbone.model(**inputs).logits
    real = batch.attention_mask.bool()
    diff = _max_diff(sdpa[real], eager[real])
    assert diff <= 1e-5, f"eager+additive vs sdpa+bool: max diff {diff}"
