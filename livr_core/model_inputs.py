"""The keyword arguments a model's `forward` gets for a batch under a mask variant.

Owns `forward_inputs` (and `position_ids`, its position part alone), the one place where a
`Batch`, a backbone adapter and a `MaskVariant` meet. Under CAUSAL (stage 2, inference) it passes the 2D padding mask and lets the model build
its own causal mask and positions, so any attention implementation works (flash included). Any
other variant (or `dense=True`) passes a 4D mask in the model's attention implementation's form
plus explicit position ids computed from the 2D padding mask by the adapter, because the model
cannot derive positions from a 4D mask.

    out = model(**forward_inputs(model, adapter, batch, MaskVariant.BOTTLENECK),
                labels=batch.labels, use_cache=False)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from livr_core.backbones.base import BackboneAdapter, unwrap
from livr_core.configs import MaskRules, MaskVariant
from livr_core.encoding import Batch
from livr_core.masks import allowed_attention, to_attention_mask
from livr_core.token_types import TokenType


def forward_inputs(
    model: nn.Module,
    adapter: BackboneAdapter,
    batch: Batch,
    variant: MaskVariant | MaskRules = MaskVariant.CAUSAL,
    *,
    dense: bool = False,
) -> dict[str, Any]:
    """Model kwargs for `batch`: ids, image tensors, attention mask and (4D case) position ids."""
    inputs = _token_and_image_inputs(adapter, batch)
    if variant is MaskVariant.CAUSAL and not dense:
        inputs["attention_mask"] = batch.attention_mask
        return inputs
    base = unwrap(model)
    allowed = allowed_attention(batch.token_types, batch.attention_mask, variant)
    inputs["attention_mask"] = to_attention_mask(
        allowed, base.config.get_text_config()._attn_implementation, base.dtype
    )
    inputs["position_ids"] = adapter.position_ids(
        model, batch.input_ids, batch.attention_mask, inputs
    )
    return inputs


def position_ids(model: nn.Module, adapter: BackboneAdapter, batch: Batch) -> torch.Tensor:
    """The adapter's position ids for `batch` (e.g. to take the last column when decoding)."""
    inputs = _token_and_image_inputs(adapter, batch)
    return adapter.position_ids(model, batch.input_ids, batch.attention_mask, inputs)


def _token_and_image_inputs(adapter: BackboneAdapter, batch: Batch) -> dict[str, Any]:
    inputs: dict[str, Any] = {"input_ids": batch.input_ids}
    available = {
        **batch.vision,
        "mm_token_type_ids": (batch.token_types == TokenType.IMAGE).to(torch.int32),
    }
    inputs.update({k: available[k] for k in adapter.model_input_names if k in available})
    return inputs
