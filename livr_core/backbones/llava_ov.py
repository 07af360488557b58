"""LLaVA-OneVision-1.5: remote-code loading, only on an explicit `trust_remote_code` opt-in.

Owns `LlavaOneVision15Adapter` and `load_llava_onevision_15`. The model is not part of
transformers 5.23; its Hub repository ships its own modeling code (`AutoModelForCausalLM` +
`AutoProcessor` with `trust_remote_code=True`). Layout: `model.visual` (RiceViT),
`model.language_model` (a plain Qwen3, so 1D RoPE positions), `lm_head`; its processor is
Qwen2.5-VL-style (`<|image_pad|>` expanded per image grid, `pixel_values` + `image_grid_thw`),
loaded with the PIL image backend pinned like the Qwen ones.
The remote code was written for transformers 4.5x; loading it on 5.23 is untested offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn
from transformers import AutoModelForCausalLM

from livr_core.backbones.base import BackboneAdapter, LoadOptions, unwrap
from livr_core.backbones.qwen import load_pil_processor, thw_grids


class LlavaOneVision15Adapter(BackboneAdapter):
    """1D positions, Qwen2.5-VL-style image inputs."""

    model_input_names = ("pixel_values", "image_grid_thw")

    def image_grids(self, model: nn.Module, vision: Mapping[str, Any]) -> list[tuple[int, int]]:
        """Qwen2.5-VL-style grids; the merge size name in the remote config is assumed (untested)."""
        merge = getattr(unwrap(model).config.vision_config, "spatial_merge_size", 2)
        return thw_grids(vision["image_grid_thw"], merge)


class RemoteCodeNotAllowed(RuntimeError):
    """Raised when a backbone needs remote code and the caller did not opt in."""


def load_llava_onevision_15(source: str, options: LoadOptions) -> tuple[nn.Module, Any]:
    """Load LLaVA-OneVision-1.5 from the Hub or a local directory (remote code, opt-in only)."""
    if not options.trust_remote_code:
        raise RemoteCodeNotAllowed(
            f"{source!r} is LLaVA-OneVision-1.5, which transformers does not implement: loading it "
            "runs the Python modeling code shipped in the checkpoint repository. Review that code, "
            "then opt in explicitly with LoadOptions(trust_remote_code=True) "
            "(`--trust-remote-code` on the command line)."
        )
    processor = load_pil_processor(source, options, trust_remote_code=True)
    model = AutoModelForCausalLM.from_pretrained(
        source,
        trust_remote_code=True,
        dtype=options.dtype,
        attn_implementation=options.attn_implementation,
    )
    if options.device is not None:
        model = model.to(options.device)
    return model, processor
