"""Read-outs of a forward pass: where the answer and the latents look, and what they hold.

Owns `eager_attention`, `mean_attention`, `key_type_mass`, `answer_latent_mass`,
`latent_image_maps` and `last_hidden_states`. Only eager attention materialises the weights, so the read-outs switch the
language model to eager for one forward (the mask then comes additive from `forward_inputs`) and
hook every self-attention module the adapter names, averaging each layer's weights over heads
as it is produced (one [B, L, L] float32 accumulator instead of every layer's [B, H, L, L]).

* `answer_latent_mass` (paper Sec. 4.4.1): the attention weight from answer tokens to latent
  tokens, averaged over heads, layers and answer positions (paper: 0.076 LIVR vs 0.028 latents
  only). Batches are encoded with an answer (the gold one or a generated one), since the query
  positions are the ANSWER-typed ones.
* `latent_image_maps` (paper Sec. 4.5): per image, the attention weight from the latents to each
  of its tokens, averaged over heads, layers and latent positions, reshaped to the image's token
  grid (rows, columns) from the adapter (Qwen: image_grid_thw / merge size). Raw weights, not
  renormalised; plotting is the caller's job.
* `last_hidden_states` (paper Sec. 4.4.2, t-SNE): the language model's final-layer states of
  every position under any mask, with the batch's token types telling latent / image / text
  positions apart. Uses the model's own attention (no eager switch).

Attention results are NumPy arrays, one entry per batch row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from livr_core.backbones.base import BackboneAdapter, unwrap
from livr_core.configs import MaskRules, MaskVariant
from livr_core.encoding import Batch
from livr_core.inference import eval_mode
from livr_core.model_inputs import forward_inputs
from livr_core.token_types import TokenType


@contextmanager
def eager_attention(model: nn.Module) -> Iterator[None]:
    """Run the language model with eager attention inside the block (the vision tower keeps its)."""
    base = unwrap(model)
    previous = base.config.get_text_config()._attn_implementation
    base.set_attn_implementation({"text_config": "eager"})
    try:
        yield
    finally:
        base.set_attn_implementation({"text_config": previous})


def mean_attention(
    model: nn.Module,
    adapter: BackboneAdapter,
    batch: Batch,
    mask: MaskVariant | MaskRules = MaskVariant.CAUSAL,
) -> torch.Tensor:
    """Attention weights averaged over layers and heads: [B, L queries, L keys], float32."""
    pattern = re.compile(adapter.attention_module_regex)
    modules = [m for name, m in model.named_modules() if pattern.fullmatch(name)]
    if not modules:
        raise ValueError(f"no module matches {adapter.attention_module_regex!r}")
    total: list[torch.Tensor] = []

    def accumulate(module: nn.Module, args: object, output: tuple) -> None:
        weights = output[1]
        if weights is None:
            raise RuntimeError(f"{type(module).__name__} returned no attention weights")
        layer = weights.float().mean(1)
        if total:
            total[0] += layer
        else:
            total.append(layer)

    hooks = [m.register_forward_hook(accumulate) for m in modules]
    try:
        with eager_attention(model), eval_mode(model):
            model(**forward_inputs(model, adapter, batch, mask), use_cache=False)
    finally:
        for hook in hooks:
            hook.remove()
    return total[0] / len(modules)


def key_type_mass(
    attention: torch.Tensor, batch: Batch, query_type: TokenType = TokenType.ANSWER
) -> np.ndarray:
    """Mean attention mass on each key type from `query_type` queries: [B, len(TokenType)].

    Padding keys carry no weight, so each row sums to 1 over the types.
    """
    types = batch.token_types.to(attention.device)
    real = batch.attention_mask.to(attention.device).bool()
    queries = (types == query_type) & real
    if not bool(queries.any(-1).all()):
        raise ValueError(f"every row needs {query_type.name} tokens (encode with an answer)")
    per_type = torch.stack(
        [(attention * (types == t)[:, None, :]).sum(-1) for t in TokenType], -1
    )  # [B, Q, types]
    mass = (per_type * queries[..., None]).sum(1) / queries.sum(-1, keepdim=True)
    return mass.cpu().numpy()


def answer_latent_mass(
    model: nn.Module,
    adapter: BackboneAdapter,
    batch: Batch,
    mask: MaskVariant | MaskRules = MaskVariant.CAUSAL,
) -> np.ndarray:
    """Answer-to-latent attention mass per row, [B] (0 for rows without latents)."""
    mass = key_type_mass(mean_attention(model, adapter, batch, mask), batch, TokenType.ANSWER)
    return mass[:, TokenType.LATENT]


def latent_image_maps(
    model: nn.Module,
    adapter: BackboneAdapter,
    batch: Batch,
    mask: MaskVariant | MaskRules = MaskVariant.CAUSAL,
) -> list[list[np.ndarray]]:
    """Per row, per image: latent-to-image attention on the image's token grid [rows, cols]."""
    attention = mean_attention(model, adapter, batch, mask)
    types = batch.token_types.to(attention.device)
    grids = iter(adapter.image_grids(model, batch.vision))
    maps: list[list[np.ndarray]] = []
    for row in range(len(types)):
        latents = types[row] == TokenType.LATENT
        if not bool(latents.any()):
            raise ValueError(f"row {row} ({batch.ids[row]!r}) has no latent tokens")
        received = attention[row, latents].mean(0)  # [keys]
        image_keys = received[types[row] == TokenType.IMAGE]
        row_maps, used = [], 0
        while used < len(image_keys):
            rows, cols = next(grids)
            row_maps.append(image_keys[used : used + rows * cols].reshape(rows, cols).cpu().numpy())
            used += rows * cols
        if used != len(image_keys):
            raise ValueError(f"image grids do not match the image tokens of row {row}")
        maps.append(row_maps)
    return maps


def last_hidden_states(
    model: nn.Module,
    adapter: BackboneAdapter,
    batch: Batch,
    mask: MaskVariant | MaskRules = MaskVariant.CAUSAL,
) -> torch.Tensor:
    """Final-layer hidden states of every position, [B, L, hidden], float32, no gradients.

    Select positions with `batch.token_types` (and `batch.attention_mask` for padding)."""
    with eval_mode(model), torch.no_grad():
        out = model(**forward_inputs(model, adapter, batch, mask), output_hidden_states=True,
                    use_cache=False)
    return out.hidden_states[-1].float()
