"""Tiny random-weight backbones built in code: offline, deterministic from a seed, CPU-fast.

Owns the three builders the tests and the demo run on:
* `tiny-qwen2.5-vl`: the real `Qwen2_5_VLForConditionalGeneration` with a tiny config;
* `tiny-qwen3-vl`: the real `Qwen3VLForConditionalGeneration` (deepstack included);
* `tiny-llava`: `LlavaForConditionalGeneration` (CLIP vision tower + Qwen3 text model), a different
  image-token scheme: one `<image>` id repeated per patch of a fixed-size square image, no
  vision start/end markers, no grid, plain 1D positions. It proves the core is generic.

Each uses the offline byte-level tokenizer (`livr_core.tokenizer`) with the real Qwen special
tokens, ties input and output embeddings like the 3B/4B checkpoints, and has spare unused
embedding rows past the tokenizer (like the real 151,936-row matrices) so K latents fit without
resizing. Image processors use the PIL backend and a small pixel budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import (
    CLIPVisionConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen3Config,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    Qwen3VLProcessor,
)
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor
from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

from livr_core.backbones.qwen import image_processor_size
from livr_core.configs import LoadOptions
from livr_core.tokenizer import build_tiny_tokenizer


@dataclass(frozen=True)
class TinySize:
    """Model sizes; the defaults keep a forward pass in tens of milliseconds on one CPU core."""

    hidden: int = 64
    intermediate: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2  # grouped-query attention, as in the real 3B/4B models
    vision_hidden: int = 32
    vision_layers: int = 2
    spare_rows: int = 32  # unused embedding rows past the tokenizer, at least; K=16 and 32 fit
    merged_tokens: int = 16  # image budget: at most this many LLM tokens per image (Qwen)

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def embedding_rows(tokenizer_len: int, size: TinySize) -> int:
    """Rows of the tiny embedding matrix: tokenizer plus spare rows, padded to a multiple of 64."""
    return math.ceil((tokenizer_len + size.spare_rows) / 64) * 64


def _seeded(model_class: type, config: Any, seed: int) -> nn.Module:
    """Instantiate under `seed` without disturbing the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_class(config).eval()


def _qwen_text_config(tokenizer: Any, size: TinySize, rope: dict[str, Any]) -> dict[str, Any]:
    return {
        "vocab_size": embedding_rows(len(tokenizer), size),
        "hidden_size": size.hidden,
        "intermediate_size": size.intermediate,
        "num_hidden_layers": size.layers,
        "num_attention_heads": size.heads,
        "num_key_value_heads": size.kv_heads,
        "head_dim": size.head_dim,
        # M-RoPE sections must sum to head_dim / 2 (the default assumes head_dim 128).
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1e6,
            "mrope_section": _mrope_section(size.head_dim),
            **rope,
        },
        "bos_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": True,
    }


def _mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary frequencies over (t, h, w) about like Qwen's [16, 24, 24]."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def _qwen_vision_tokens(tokenizer: Any) -> dict[str, int]:
    ids = tokenizer.convert_tokens_to_ids
    return {
        "image_token_id": ids("<|image_pad|>"),
        "video_token_id": ids("<|video_pad|>"),
        "vision_start_token_id": ids("<|vision_start|>"),
        "vision_end_token_id": ids("<|vision_end|>"),
    }


def _qwen_image_processor(
    patch: int, size: TinySize, options: LoadOptions, **kwargs: Any
) -> Qwen2VLImageProcessorPil:
    token_pixels = (patch * 2) ** 2  # one LLM token = a 2x2 merge of patches
    budget = {"shortest_edge": 4 * token_pixels, "longest_edge": size.merged_tokens * token_pixels}
    return Qwen2VLImageProcessorPil(
        size=image_processor_size(budget, options) or budget,
        patch_size=patch,
        merge_size=2,
        temporal_patch_size=2,
        **kwargs,
    )


def build_tiny_qwen2_5_vl(
    options: LoadOptions | None = None, size: TinySize | None = None
) -> tuple[nn.Module, Any]:
    """The Qwen2.5-VL architecture at toy size, with its processor."""
    options, size = options or LoadOptions(), size or TinySize()
    tokenizer = build_tiny_tokenizer()
    config = Qwen2_5_VLConfig(
        text_config=_qwen_text_config(tokenizer, size, {}),
        vision_config={
            "depth": size.vision_layers,
            "hidden_size": size.vision_hidden,
            "intermediate_size": 2 * size.vision_hidden,
            "num_heads": 2,
            "out_hidden_size": size.hidden,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,  # a multiple of patch x merge
            "fullatt_block_indexes": [size.vision_layers - 1],
        },
        tie_word_embeddings=True,
        **_qwen_vision_tokens(tokenizer),
    )
    processor = Qwen2_5_VLProcessor(
        image_processor=_qwen_image_processor(14, size, options),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=tokenizer.chat_template,
    )
    return _finish(Qwen2_5_VLForConditionalGeneration, config, options), processor


def build_tiny_qwen3_vl(
    options: LoadOptions | None = None, size: TinySize | None = None
) -> tuple[nn.Module, Any]:
    """The Qwen3-VL architecture (with deepstack) at toy size, with its processor."""
    options, size = options or LoadOptions(), size or TinySize()
    tokenizer = build_tiny_tokenizer()
    config = Qwen3VLConfig(
        text_config=_qwen_text_config(tokenizer, size, {"mrope_interleaved": True}),
        vision_config={
            "depth": size.vision_layers,
            "hidden_size": size.vision_hidden,
            "intermediate_size": 2 * size.vision_hidden,
            "num_heads": 2,
            "out_hidden_size": size.hidden,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "num_position_embeddings": 64,  # must be a perfect square
            "deepstack_visual_indexes": list(range(size.vision_layers)),
        },
        tie_word_embeddings=True,
        **_qwen_vision_tokens(tokenizer),
    )
    processor = Qwen3VLProcessor(
        image_processor=_qwen_image_processor(
            16, size, options, image_mean=[0.5] * 3, image_std=[0.5] * 3
        ),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(),
        chat_template=tokenizer.chat_template,
    )
    return _finish(Qwen3VLForConditionalGeneration, config, options), processor


LLAVA_IMAGE_TOKEN = "<image>"
_LLAVA_IMAGE_SIDE = 56  # every image is resized and center-cropped to 56x56: 16 patches of 14


def build_tiny_llava(
    options: LoadOptions | None = None, size: TinySize | None = None
) -> tuple[nn.Module, Any]:
    """LLaVA (CLIP ViT + projector + Qwen3 text model) at toy size, with its processor."""
    options, size = options or LoadOptions(), size or TinySize()
    tokenizer = build_tiny_tokenizer(
        image_markup=LLAVA_IMAGE_TOKEN, extra_special_tokens=(LLAVA_IMAGE_TOKEN,)
    )
    patch = 14
    text = _qwen_text_config(tokenizer, size, {})
    text["rope_parameters"].pop("mrope_section")
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=size.vision_hidden,
            intermediate_size=2 * size.vision_hidden,
            num_hidden_layers=size.vision_layers,
            num_attention_heads=2,
            image_size=_LLAVA_IMAGE_SIDE,
            patch_size=patch,
            projection_dim=size.vision_hidden,
        ),
        text_config=Qwen3Config(**text),
        image_token_index=tokenizer.convert_tokens_to_ids(LLAVA_IMAGE_TOKEN),
        image_seq_length=(_LLAVA_IMAGE_SIDE // patch) ** 2,
        vision_feature_select_strategy="default",  # drop CLS: one token per patch
        vision_feature_layer=-1,
        tie_word_embeddings=True,
    )
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": _LLAVA_IMAGE_SIDE},
            crop_size={"height": _LLAVA_IMAGE_SIDE, "width": _LLAVA_IMAGE_SIDE},
        ),
        tokenizer=tokenizer,
        patch_size=patch,
        vision_feature_select_strategy="default",
        chat_template=tokenizer.chat_template,
        image_token=LLAVA_IMAGE_TOKEN,
        num_additional_image_tokens=1,  # CLIP's CLS, which the "default" strategy drops again
    )
    return _finish(LlavaForConditionalGeneration, config, options), processor


def _finish(model_class: type, config: Any, options: LoadOptions) -> nn.Module:
    model = _seeded(model_class, config, options.seed)
    model.set_attn_implementation(options.attn_implementation)
    if isinstance(options.dtype, torch.dtype):
        model = model.to(options.dtype)  # "auto" keeps fp32, the CPU default
    if options.device is not None:
        model = model.to(options.device)
    return model
