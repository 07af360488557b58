"""Qwen2.5-VL and Qwen3-VL: their adapter (M-RoPE positions) and Hub / local-directory loading.

Owns `QwenVLAdapter`, `load_qwen_vl` (with the registry's `load_qwen2_5_vl` / `load_qwen3_vl`), `thw_grids` (image token grids), and the loading of Qwen-style processors that
LLaVA-OneVision-1.5 shares (`load_pil_processor`, `image_processor_size`: the PIL image backend
pinned, the pixel budget applied). Both families share the answers: `<|image_pad|>` is the image
token, the model takes `pixel_values`, `image_grid_thw` and `mm_token_type_ids`, and position ids
are 3D M-RoPE indices from `model.model.get_rope_index`, computed from the 2D padding mask.
Passing them explicitly is required whenever a 4D mask is used (the model would otherwise try to
derive them from the 4D mask and crash), and `mm_token_type_ids` must be given (Qwen2.5-VL
silently falls back to 1D positions without it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from transformers import AutoImageProcessor, AutoProcessor

from livr_core.backbones.base import BackboneAdapter, unwrap
from livr_core.configs import LoadOptions


class QwenVLAdapter(BackboneAdapter):
    """Qwen2.5-VL / Qwen3-VL: M-RoPE position ids over image grids."""

    model_input_names = ("pixel_values", "image_grid_thw", "mm_token_type_ids")

    def position_ids(
        self,
        model: nn.Module,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        model_inputs: Mapping[str, Any],
    ) -> torch.Tensor:
        """(3, B, L) M-RoPE positions; text after an image continues at start + max(h, w)/merge."""
        positions, _ = unwrap(model).model.get_rope_index(
            input_ids,
            mm_token_type_ids=model_inputs["mm_token_type_ids"],
            image_grid_thw=model_inputs.get("image_grid_thw"),
            attention_mask=attention_mask,
        )
        return positions

    def image_grids(self, model: nn.Module, vision: Mapping[str, Any]) -> list[tuple[int, int]]:
        """One token per merge x merge patches: (h / merge, w / merge) of each `image_grid_thw`."""
        merge = unwrap(model).config.vision_config.spatial_merge_size
        return thw_grids(vision["image_grid_thw"], merge)


def thw_grids(image_grid_thw: torch.Tensor, merge: int) -> list[tuple[int, int]]:
    """Token grids of images from their (t, h, w) patch grids (t is 1 for a still image)."""
    return [(int(h) // merge, int(w) // merge) for _, h, w in image_grid_thw.tolist()]


def image_processor_size(current: Mapping[str, int], options: LoadOptions) -> dict[str, int] | None:
    """The Qwen image-processor `size` for the options' pixel budget (None: keep `current`).

    Despite their names, `shortest_edge` / `longest_edge` are pixel counts (min / max pixels).
    """
    if options.min_pixels is None and options.max_pixels is None:
        return None
    return {
        "shortest_edge": options.min_pixels or current["shortest_edge"],
        "longest_edge": options.max_pixels or current["longest_edge"],
    }


def load_pil_processor(source: str, options: LoadOptions, trust_remote_code: bool = False) -> Any:
    """The checkpoint's processor with the PIL image backend pinned and the options' pixel budget.

    The PIL and torchvision backends resize to different pixel values, so training and evaluation
    must use the same one; `AutoProcessor` alone would pick torchvision when it is installed.

    The budget is passed both as `size` and as `min_pixels` / `max_pixels`: Qwen2.5-VL's published
    `preprocessor_config.json` stores top-level `min_pixels` / `max_pixels`, which the image
    processor's constructor lets override `size` (transformers 5.2x), so `size=` alone is
    silently ignored there. The loaded budget is then checked, so it can never be recorded as
    applied without being so.
    """
    remote = {"trust_remote_code": True} if trust_remote_code else {}
    image_processor = AutoImageProcessor.from_pretrained(source, backend="pil", **remote)
    size = image_processor_size(image_processor.size, options)
    if size is not None:
        image_processor = AutoImageProcessor.from_pretrained(
            source, backend="pil", size=size, min_pixels=size["shortest_edge"],
            max_pixels=size["longest_edge"], **remote
        )
        applied = {k: image_processor.size[k] for k in size}
        if applied != size:
            raise RuntimeError(
                f"{source}: the image processor ignored the pixel budget {size} (it uses "
                f"{applied}); this transformers version resizes differently from what livr_core "
                "expects, please report it"
            )
    # Swapped in after loading: passed as `image_processor=` to AutoProcessor, transformers 5.24
    # also hands it to the tokenizer, which keeps it in its config, and `save_pretrained` (an
    # export) then fails on an object JSON cannot hold.
    processor = AutoProcessor.from_pretrained(source, **remote)
    processor.image_processor = image_processor
    return processor


def load_qwen2_5_vl(source: str, options: LoadOptions) -> tuple[nn.Module, Any]:
    """Qwen2.5-VL (3B, 7B) from `source`: the registry's loader."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    return load_qwen_vl(Qwen2_5_VLForConditionalGeneration, source, options)


def load_qwen3_vl(source: str, options: LoadOptions) -> tuple[nn.Module, Any]:
    """Qwen3-VL (4B) from `source`: the registry's loader."""
    from transformers import Qwen3VLForConditionalGeneration

    return load_qwen_vl(Qwen3VLForConditionalGeneration, source, options)


def load_qwen_vl(model_class: type, source: str, options: LoadOptions) -> tuple[nn.Module, Any]:
    """Load a Qwen-VL checkpoint (Hub id or local directory) and its processor."""
    processor = load_pil_processor(source, options)
    model = model_class.from_pretrained(
        source, dtype=options.dtype, attn_implementation=options.attn_implementation
    )
    if options.device is not None:
        model = model.to(options.device)
    return model, processor
