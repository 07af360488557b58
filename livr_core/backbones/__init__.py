"""The backbone registry: names → how to load them and which adapter answers for them.

Owns `BackboneSpec`, `BACKBONES`, `get_backbone` and `load_backbone`. Real backbones load from
the Hub id in their spec or from `LoadOptions.source` (a local directory or another Hub id of
the same family); tiny ones are built in code. An unknown name raises a `KeyError` listing the
known ones.

    backbone = load_backbone("tiny-qwen2.5-vl")            # Backbone(model, processor, adapter)
    backbone = load_backbone("qwen2.5-vl-3b", LoadOptions(source="/models/Qwen2.5-VL-3B"))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen3VLForConditionalGeneration

from livr_core.backbones.base import Backbone, BackboneAdapter, LoadOptions, unwrap
from livr_core.backbones.llava_ov import (
    LlavaOneVision15Adapter,
    RemoteCodeNotAllowed,
    load_llava_onevision_15,
)
from livr_core.backbones.qwen import QwenVLAdapter, load_qwen_vl
from livr_core.backbones.tiny import (
    TinySize,
    build_tiny_llava,
    build_tiny_qwen2_5_vl,
    build_tiny_qwen3_vl,
)

Loader = Callable[[str | None, LoadOptions], tuple[nn.Module, Any]]


@dataclass(frozen=True)
class BackboneSpec:
    """One registry entry: default source, loader and adapter of a backbone."""

    name: str
    default_source: str | None  # Hub id; None for backbones built in code
    loader: Loader  # (source, options) -> (model, processor)
    adapter: BackboneAdapter

    def load(self, options: LoadOptions | None = None) -> Backbone:
        options = options or LoadOptions()
        model, processor = self.loader(options.source or self.default_source, options)
        return Backbone(name=self.name, model=model, processor=processor, adapter=self.adapter)


def _tiny(builder: Callable[..., tuple[nn.Module, Any]]) -> Loader:
    return lambda source, options: builder(options)


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            "qwen2.5-vl-3b",
            "Qwen/Qwen2.5-VL-3B-Instruct",
            lambda src, opt: load_qwen_vl(Qwen2_5_VLForConditionalGeneration, src, opt),
            QwenVLAdapter(),
        ),
        BackboneSpec("qwen2.5-vl-7b", "Qwen/Qwen2.5-VL-7B-Instruct", lambda src, opt: load_qwen_vl(Qwen2_5_VLForConditionalGeneration, src, opt), QwenVLAdapter()),
        BackboneSpec(
            "qwen3-vl-4b",
            "Qwen/Qwen3-VL-4B-Instruct",
            lambda src, opt: load_qwen_vl(Qwen3VLForConditionalGeneration, src, opt),
            QwenVLAdapter(),
        ),
        BackboneSpec(
            "llava-onevision-1.5-4b",
            "lmms-lab/LLaVA-OneVision-1.5-4B-Instruct",
            load_llava_onevision_15,
            LlavaOneVision15Adapter(),
        ),
        BackboneSpec("tiny-qwen2.5-vl", None, _tiny(build_tiny_qwen2_5_vl), QwenVLAdapter()),
        BackboneSpec("tiny-qwen3-vl", None, _tiny(build_tiny_qwen3_vl), QwenVLAdapter()),
        BackboneSpec("tiny-llava", None, _tiny(build_tiny_llava), BackboneAdapter()),
    )
}
TINY_BACKBONES: tuple[str, ...] = tuple(n for n in BACKBONES if n.startswith("tiny-"))


def get_backbone(name: str) -> BackboneSpec:
    """The registry entry for `name`; an unknown name lists the known ones."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise KeyError(
            f"unknown backbone {name!r}; known backbones: {', '.join(sorted(BACKBONES))}"
        ) from None


def load_backbone(name: str, options: LoadOptions | None = None) -> Backbone:
    """Load backbone `name` (model + processor + adapter)."""
    return get_backbone(name).load(options)


__all__ = [
    "BACKBONES",
    "TINY_BACKBONES",
    "Backbone",
    "BackboneAdapter",
    "BackboneSpec",
    "LoadOptions",
    "RemoteCodeNotAllowed",
    "TinySize",
    "get_backbone",
    "load_backbone",
    "unwrap",
]
