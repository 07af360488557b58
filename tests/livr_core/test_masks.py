"""Mask construction on hand-made token-type rows (no model): rules, padding, diagonal, formats."""

from __future__ import annotations

import pytest
import torch

from livr_core.configs import MaskRules, MaskVariant
from livr_core.masks import allowed_attention, to_attention_mask
from livr_core.token_types import TokenType

T, I, L, A, P = (TokenType.TEXT, TokenType.IMAGE, TokenType.LATENT, TokenType.ANSWER,
                 TokenType.PROMPT)
# scaffold, image x2, vision-end, prompt x2, latent x2, scaffold, answer x2, then 2 pads
ROW = [T, I, I, T, P, P, L, L, T, A, A, T, T]
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


def test_latent_to_prompt_bars_exactly_the_question_from_the_latents() -> None:
    """Table 4(a) "+latent->prompt": the bottleneck, minus latent -> PROMPT keys, nothing else;
    the latents keep the scaffolding (first token, vision markers), the images and each other."""
    mask = _mask(MaskVariant.BOTTLENECK_LATENTS_NO_PROMPT)
    bottleneck = _mask(MaskVariant.BOTTLENECK)
    barred = torch.zeros_like(mask)
    for q in _positions(L):
        barred[q, _positions(P)] = True
    assert torch.equal(bottleneck & ~mask, barred) and not bool((mask & ~bottleneck).any())
    latent = _positions(L)[1]
    before = [k for k in range(latent + 1) if ROW[k] != P]
    assert bool(mask[latent, before].all()) and not bool(mask[latent, _positions(P)].any())


def test_stricter_reading_bars_every_text_key_from_the_latents() -> None:
    mask = _mask(MaskVariant.BOTTLENECK_LATENTS_NO_TEXT)
    bottleneck = _mask(MaskVariant.BOTTLENECK)
    barred = torch.zeros_like(mask)
    for q in _positions(L):
        barred[q, [k for k in _positions(T) + _positions(P) if k < q]] = True
    assert torch.equal(bottleneck & ~mask, barred)
    latent = _positions(L)[1]
    assert torch.equal(mask[latent].nonzero().flatten(), torch.tensor(_positions(I) + _positions(L)))


def test_prompt_and_text_are_alike_under_every_other_mask() -> None:
    as_text = [T if t == P else t for t in ROW]
    for variant in (MaskVariant.CAUSAL, MaskVariant.BOTTLENECK, MaskVariant.ANSWER_ONLY):
        assert torch.equal(_mask(variant), _mask(variant, as_text)), variant


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
