"""LLaVA-OneVision-1.5: its adapter and the loading of its published checkpoints, natively.

Owns `LlavaOneVision15Adapter`, `load_llava_onevision_15` and `RemoteCodeNotAllowed`.

A checkpoint whose `config.json` says `model_type: llavaonevision1_5` loads into the native
implementation (`livr_core.backbones.llava_ov_model`): its `auto_map` is read (a warning when it
names other code than the published files) but never imported, the published weight names are
mapped by `CHECKPOINT_KEY_MAP`, and any checkpoint key left unused or model weight left
unloaded is an error naming both. The processor is the checkpoint's own Qwen2.5-VL one (Qwen2
tokenizer, `<|image_pad|>` expanded per 2x2 patch group, `pixel_values` + `image_grid_thw`),
loaded like the Qwen backbones' (PIL image backend, pixel budget). The language model is a
plain Qwen3, so positions are the base adapter's 1D ones.

Any other `model_type` is an unknown checkpoint: it is loaded through its own remote code only
on the explicit `trust_remote_code` opt-in, and refused otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedConfig

from livr_core.backbones.base import BackboneAdapter, unwrap
from livr_core.backbones.llava_ov_model import (
    CHECKPOINT_KEY_MAP,
    MODEL_TYPE,
    LlavaOnevision15Config,
    LlavaOnevision15ForConditionalGeneration,
)
from livr_core.backbones.qwen import load_pil_processor, thw_grids
from livr_core.configs import LoadOptions

logger = logging.getLogger(__name__)

# The code files the published repository's auto_map points into.
PUBLISHED_CODE = ("configuration_llavaonevision1_5.", "modeling_llavaonevision1_5.")


class LlavaOneVision15Adapter(BackboneAdapter):
    """1D positions (Qwen3), Qwen2.5-VL-style image inputs and token grids."""

    model_input_names = ("pixel_values", "image_grid_thw")
    published_architecture = "LLaVAOneVision1_5_ForConditionalGeneration"  # the Hub config's name

    def image_grids(self, model: nn.Module, vision: Mapping[str, Any]) -> list[tuple[int, int]]:
        merge = unwrap(model).config.vision_config.spatial_merge_size
        return thw_grids(vision["image_grid_thw"], merge)


class RemoteCodeNotAllowed(RuntimeError):
    """Raised when a checkpoint needs remote code and the caller did not opt in."""


def load_llava_onevision_15(source: str, options: LoadOptions) -> tuple[nn.Module, Any]:
    """Load LLaVA-OneVision-1.5 (Hub id or local directory) and its processor."""
    config_dict, _ = PreTrainedConfig.get_config_dict(source)
    model_type = config_dict.get("model_type")
    if model_type != MODEL_TYPE:
        return _load_remote_code(source, options, model_type)
    _check_auto_map(source, config_dict.get("auto_map", {}))
    processor = load_pil_processor(source, options)
    model, info = LlavaOnevision15ForConditionalGeneration.from_pretrained(
        source,
        config=LlavaOnevision15Config.from_dict(config_dict),
        key_mapping=CHECKPOINT_KEY_MAP,
        dtype=options.dtype,
        attn_implementation=options.attn_implementation,
        output_loading_info=True,
    )
    problems = {k: sorted(v) for k, v in info.items() if k != "error_msgs" and v}
    if problems or info.get("error_msgs"):
        raise ValueError(
            f"{source}: the checkpoint's weights do not match LLaVA-OneVision-1.5 "
            f"({problems or info['error_msgs']}); a checkpoint saved under other key names or "
            "another architecture needs its own loader"
        )
    if options.device is not None:
        model = model.to(options.device)
    return model, processor


def _check_auto_map(source: str, auto_map: Mapping[str, str]) -> None:
    """The auto_map is data: say when it names code other than the published files."""
    foreign = {k: v for k, v in auto_map.items() if not v.startswith(PUBLISHED_CODE)}
    if foreign:
        logger.warning(
            "%s: config.json's auto_map names modeling code other than the published "
            "LLaVA-OneVision-1.5 files (%s); it is not run: the native implementation of the "
            "published architecture is loaded instead",
            source, foreign,
        )


def _load_remote_code(
    source: str, options: LoadOptions, model_type: str | None
) -> tuple[nn.Module, Any]:
    if not options.trust_remote_code:
        raise RemoteCodeNotAllowed(
            f"{source!r} has model_type {model_type!r}, not {MODEL_TYPE!r}: livr_core has no "
            "native implementation for it, and loading it runs the Python modeling code shipped "
            "in the checkpoint repository. Review that code, then opt in explicitly with "
            "LoadOptions(trust_remote_code=True) (`--trust-remote-code` on the command line)."
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
