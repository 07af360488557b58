"""Mask construction on hand-made token-type rows (no model): rules, padding, diagonal, formats."""

from __future__ import annotations

import pytest
import torch

from livr_core.masks import MaskRules, MaskVariant, allowed_attention, to_attention_mask
from livr_core.token_types import TokenType

T, I, L, A = TokenType.TEXT, TokenType.IMAGE, TokenType.LATENT, TokenType.ANSWER
# scaffold, image x2, vision-end, prompt x2, latent x2, scaffold, answer x2, then 2 pads
ROW = [T, I, I, T, T, T, L, L, T, A, A, T, T]
VALID = [1] * 11 + [0, 0]


def _mask(variant: MaskVariant | MaskRules, row=ROW, valid=VALID) -> torch.Tensor:
    types = torch.tensor([[int(t) for t in row]])
    return allowed_attention(types, torch.tensor([valid]), variant)[0, 0]


def _positions(kind: TokenType, row=ROW) -> list[int]:
    return [i for i, t in enumerate(row[:11]) if t == kind]


def test_causal_is_lower_triangular_over_real_keys_with_the_diagonal_kept() -> None:
    mask = _mask(MaskVariant.CAUSAL)
    expected = torch.tril(torch.ones(13, 13, dtype=torch.bool))
    expected[:, 11:] = False  # padding keys
    expected |= torch.eye(13, dtype=torch.bool)  # pad rows keep their diagonal: never empty
    assert torch.equal(mask, expected)


def test_bottleneck_bars_every_non_image_non_latent_query_from_images() -> None:
    mask = _mask(MaskVariant.BOTTLENECK)
    images, latents = _positions(I), _positions(L)
    for q in range(11):
        sees_images = bool(mask[q, images].any())
        if ROW[q] in (I, L) and q >= images[0]:
            assert bool(mask[q, : q + 1].all()), q  # image->image, latent->everything before
        else:
            assert not sees_images, q  # vision-end, prompt, scaffold, answer
    for q in range(latents[-1] + 1, 11):
        assert bool(mask[q, latents].all())  # the answer reaches the image through the latents
    assert torch.equal(mask & ~_mask(MaskVariant.CAUSAL), torch.zeros_like(mask))


def test_answer_only_and_mask_only_leave_the_prompt_its_image_access() -> None:
    mask = _mask(MaskVariant.ANSWER_ONLY)
    images = _positions(I)
    assert bool(mask[4][images].all()) and bool(mask[8][images].all())
    assert not bool(mask[9][images].any()) and not bool(mask[10][images].any())
    row = [t for t in ROW if t != L]
    valid = VALID[: len(row)]
    assert torch.equal(
        _mask(MaskVariant.MASK_ONLY, row, valid), _mask(MaskVariant.ANSWER_ONLY, row, valid)
    )
    with pytest.raises(ValueError, match="no-latent"):
        _mask(MaskVariant.MASK_ONLY)


def test_latents_barred_from_prompt_still_see_images_and_each_other() -> None:
    mask = _mask(MaskVariant.BOTTLENECK_LATENTS_NO_PROMPT)
    latent, texts = _positions(L)[1], _positions(T)
    assert not bool(mask[latent, [t for t in texts if t < latent]].any())
    assert bool(mask[latent, _positions(I)].all()) and bool(mask[latent, _positions(L)].all())


def test_query_rows_for_a_kv_cache_are_the_tail_of_the_full_mask() -> None:
    types = torch.tensor([[int(t) for t in ROW[:11]]])
    valid = torch.ones(1, 11, dtype=torch.long)
    full = allowed_attention(types, valid, MaskVariant.BOTTLENECK)
    tail = allowed_attention(types, valid, MaskVariant.BOTTLENECK, query_start=9)
    assert tail.shape == (1, 1, 2, 11) and torch.equal(tail, full[:, :, 9:])


def test_formats_per_attention_implementation() -> None:
    allowed = _mask(MaskVariant.BOTTLENECK)[None, None]
    assert to_attention_mask(allowed, "sdpa", torch.float32) is allowed
    additive = to_attention_mask(allowed, "eager", torch.bfloat16)
    assert additive.dtype == torch.bfloat16
    assert (additive[allowed] == 0).all()
    assert (additive[~allowed] == torch.finfo(torch.bfloat16).min).all()
    with pytest.raises(ValueError, match="cannot take a 4D mask"):
        to_attention_mask(allowed, "flash_attention_2", torch.bfloat16)
