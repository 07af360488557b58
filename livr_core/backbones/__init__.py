"""The backbone registry: names → how to load them and which adapter answers for them.

Owns `BackboneSpec`, `BACKBONES`, `get_backbone`, `load_backbone` and `BackboneUnavailable`.
Real backbones load from the Hub id in their spec or from `LoadOptions.source` (a local directory
or another Hub id of the same family); tiny ones are built in code. An unknown name raises a
`KeyError` listing the known ones.

Before anything is loaded, the source is resolved (`BackboneSpec.resolve_source`) so that a
missing checkpoint fails at once with what to do, instead of after a minute of Hub retries: a
local path must be a directory holding `config.json`; a Hub id already in the local Hugging Face
cache loads from its cached snapshot when the Hub cannot be reached; a Hub id that is neither
cached nor reachable (offline, `HF_HUB_OFFLINE=1`) raises `BackboneUnavailable`, naming the
local-copy options. `BackboneSpec.local_names` are the folder names a download may have under a
models folder: the backbone's name or the Hub repository's (`Qwen2.5-VL-3B-Instruct`,
`Qwen/Qwen2.5-VL-3B-Instruct`).

    backbone = load_backbone("tiny-qwen2.5-vl")            # Backbone(model, processor, adapter)
    backbone = load_backbone("qwen2.5-vl-3b", LoadOptions(source="/models/Qwen2.5-VL-3B"))
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
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
        source = options.source or self.default_source
        if source is not None:
            source = self.resolve_source(source)
            options = replace(options, source=source)
        model, processor = self.loader(source, options)
        return Backbone(name=self.name, model=model, processor=processor, adapter=self.adapter)

    def local_names(self) -> tuple[str, ...]:
        """Folder names a local copy of this backbone may have under a models folder: the
        backbone's name, the Hub repository's name (`hf download --local-dir`, `git clone`) and
        `<org>/<repo>`."""
        names = [self.name]
        if self.default_source is not None:
            names += [self.default_source.split("/")[-1], self.default_source]
        return tuple(dict.fromkeys(names))

    def resolve_source(self, source: str) -> str:
        """Where `source` loads from, checked before any download is tried (module docstring)."""
        path = Path(source).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise BackboneUnavailable(
                    f"{self.name}: {path} is not a checkpoint directory (it has no config.json)"
                )
            return str(path)
        if _looks_like_path(source):
            raise BackboneUnavailable(f"{self.name}: checkpoint directory {path} does not exist")
        return _hub_source(self.name, source)


class BackboneUnavailable(OSError):
    """The backbone's weights are neither at the given path, nor cached, nor downloadable now.

    `reason` says which; the message adds how to point livr_core at a local copy."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"{reason}; point at a local copy of the checkpoint with "
                         "LoadOptions(source=DIR)")
        self.reason = reason


def _looks_like_path(source: str) -> bool:
    """A Hub id is `name` or `org/name`; anything else (absolute, ./, ~, deeper) is a path."""
    return (os.path.isabs(source) or source.startswith((".", "~")) or source.count("/") > 1
            or os.sep != "/" and os.sep in source)


HUB_PROBE_SECONDS = 10  # one request; a reachable Hub answers in well under a second


def _hub_source(name: str, repo: str) -> str:
    """`repo` itself when the Hub answers; its cached snapshot directory when it does not; else
    `BackboneUnavailable` at once (no retries)."""
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    reason = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else None
    if reason is None:
        try:
            HfApi().model_info(repo, timeout=HUB_PROBE_SECONDS)
            return repo
        except HfHubHTTPError:  # the Hub answered (unknown or gated repo): its own error follows
            return repo
        except Exception as exc:  # noqa: BLE001 - no answer at all: do not count on the Hub
            reason = f"the Hub cannot be reached ({type(exc).__name__}: {exc})"
    try:
        return snapshot_download(repo, local_files_only=True)
    except Exception:  # noqa: BLE001 - not (completely) in the local cache
        raise BackboneUnavailable(
            f"{name}: {repo} is not in the local Hugging Face cache and {reason}"
        ) from None


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
            "qwen2.5-vl-7b",
            "Qwen/Qwen2.5-VL-7B-Instruct",
            lambda src, opt: load_qwen_vl(Qwen2_5_VLForConditionalGeneration, src, opt),
            QwenVLAdapter(),
        ),
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
    "BackboneUnavailable",
    "LoadOptions",
    "RemoteCodeNotAllowed",
    "TinySize",
    "get_backbone",
    "load_backbone",
    "unwrap",
]
