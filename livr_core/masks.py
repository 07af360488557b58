"""Attention masks built by position from token types: causal, the LIVR bottleneck and ablations.

Owns `allowed_attention` and `to_attention_mask`, for the variants of
`livr_core.configs.MaskVariant` and the pairs each bars (`livr_core.configs.RULES`, below).

A mask is causal AND key-padding AND NOT (the variant's barred query-type → key-type pairs),
then OR the diagonal so no query row is empty (SDPA returns NaN for a fully masked row; pad rows
keep their diagonal). Barring is by token type, never by a hand-picked span: under the LIVR
bottleneck every TEXT, PROMPT or ANSWER position after the first image (vision-end markers, text
between images, the question, the chat scaffolding around the latents, the answer) is barred from
every IMAGE key, so no text state depends on the pixels and the image reaches the answer only
through the latents. Image→image and latent→everything-before stay allowed. The encoder types
the question (`Sample.prompt`) PROMPT and the rest of the non-answer text TEXT
(`livr_core.token_types`).

| variant | barred query → key |
|---|---|
| CAUSAL | nothing (stage 2, inference) |
| BOTTLENECK | text/prompt → image, answer → image (stage 1) |
| ANSWER_ONLY | answer → image (ablation "ans→vis only") |
| BOTTLENECK_LATENTS_NO_PROMPT | BOTTLENECK + latent → prompt (ablation "+latent→prompt": the latents lose the question, keep the chat scaffolding before the images, the first token included) |
| BOTTLENECK_LATENTS_NO_TEXT | BOTTLENECK + latent → prompt and → text (a stricter reading of "+latent→prompt": the latents see only images and each other) |
| MASK_ONLY | answer → image, for inputs without latents (ablation "mask only": the prompt tokens keep image access) |

Output format per attention implementation: `sdpa` takes the bool mask (True = attend); `eager`
adds the mask to the scores, so it gets 0 / finfo(dtype).min (a bool or 0/1 float mask there
would be silently wrong); flash attention cannot express a 4D mask and is refused.
"""

from __future__ import annotations

import torch

from livr_core.configs import RULES, MaskRules, MaskVariant
from livr_core.token_types import TokenType


def allowed_attention(
    token_types: torch.Tensor,
    key_valid: torch.Tensor,
    rules: MaskRules | MaskVariant,
    query_start: int = 0,
) -> torch.Tensor:
    """Bool [B, 1, Q, KV] mask (True = may attend) for queries at positions query_start..KV-1.

    `token_types` and `key_valid` are [B, KV] over all positions (cache included); with a KV
    cache, `query_start` = cache length gives the rows of the new tokens only.
    """
    if isinstance(rules, MaskVariant):
        if rules is MaskVariant.MASK_ONLY and bool((token_types == TokenType.LATENT).any()):
            raise ValueError("MaskVariant.MASK_ONLY is the no-latent ablation; inputs have latents")
        rules = RULES[rules]
    kv = token_types.shape[1]
    q_pos = torch.arange(query_start, kv, device=token_types.device)[:, None]
    k_pos = torch.arange(kv, device=token_types.device)[None, :]
    allowed = (k_pos <= q_pos)[None] & key_valid.bool()[:, None, :]
    q_types = token_types[:, query_start:, None]
    k_types = token_types[:, None, :]
    for query_type, key_type in rules.barred_pairs():
        allowed &= ~((q_types == query_type) & (k_types == key_type))
    allowed |= (k_pos == q_pos)[None]
    return allowed[:, None]


def to_attention_mask(
    allowed: torch.Tensor, attn_implementation: str, dtype: torch.dtype
) -> torch.Tensor:
    """The mask in the form `attn_implementation` expects: bool (sdpa) or additive (eager)."""
    if attn_implementation == "sdpa":
        return allowed
    if attn_implementation == "eager":
        additive = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
        return additive.masked_fill_(~allowed, torch.finfo(dtype).min)
    raise ValueError(
        f"attention implementation {attn_implementation!r} cannot take a 4D mask; use 'sdpa' "
        "(bool mask) or 'eager' (additive mask, and attention weights for read-outs)"
    )
