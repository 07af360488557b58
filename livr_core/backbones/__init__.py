"""The backbone registry: names → labels, default sources, and where the loader and adapter live.

Owns `BackboneSpec`, `BACKBONES`, `TINY_BACKBONES`, `get_backbone`, `load_backbone` and
`BackboneUnavailable`. Adding a backbone is one entry here plus its adapter file. The registry
imports no model code: each spec names its loader and adapter as "module:attribute", imported on
first use, so a config error or `harness run --dry-run` that only needs the names and labels
answers at once (importing transformers' model classes takes seconds). Real backbones load from
the Hub id in their spec or from `LoadOptions.source` (a local directory or another Hub id of the
same family); tiny ones are built in code. An unknown name raises a `KeyError` listing the known
ones. The adapter, model and processor types are in `livr_core.backbones.base`.

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

import importlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livr_core.configs import LoadOptions

if TYPE_CHECKING:
    from livr_core.backbones.base import Backbone, BackboneAdapter


def _resolve(ref: str) -> Any:
    """The attribute `ref` ("module:attribute") names, importing its module."""
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class BackboneSpec:
    """One registry entry: report label, default source, loader and adapter of a backbone.

    `loader` is "module:function": `(source, options) -> (model, processor)` for a checkpoint,
    `(options) -> (model, processor)` for a backbone built in code (`default_source` None).
    `adapter_class` is "module:Class" of its `BackboneAdapter`."""

    name: str
    label: str  # in reports: the paper's name of the model
    default_source: str | None  # Hub id; None for backbones built in code
    loader: str
    adapter_class: str

    @property
    def adapter(self) -> BackboneAdapter:
        return _resolve(self.adapter_class)()

    def load(self, options: LoadOptions | None = None) -> Backbone:
        from livr_core.backbones.base import Backbone

        options = options or LoadOptions()
        source = options.source or self.default_source
        if source is not None:
            source = self.resolve_source(source)
            options = replace(options, source=source)
        loader = _resolve(self.loader)
        model, processor = (loader(options) if self.default_source is None
                            else loader(source, options))
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


_QWEN, _TINY = "livr_core.backbones.qwen", "livr_core.backbones.tiny"
BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("qwen2.5-vl-3b", "Qwen2.5-VL-3B", "Qwen/Qwen2.5-VL-3B-Instruct",
                     f"{_QWEN}:load_qwen2_5_vl", f"{_QWEN}:QwenVLAdapter"),
        BackboneSpec("qwen2.5-vl-7b", "Qwen2.5-VL-7B", "Qwen/Qwen2.5-VL-7B-Instruct",
                     f"{_QWEN}:load_qwen2_5_vl", f"{_QWEN}:QwenVLAdapter"),
        BackboneSpec("qwen3-vl-4b", "Qwen3-VL-4B", "Qwen/Qwen3-VL-4B-Instruct",
                     f"{_QWEN}:load_qwen3_vl", f"{_QWEN}:QwenVLAdapter"),
        BackboneSpec("llava-onevision-1.5-4b", "LLaVA-OV-1.5-4B",
                     "lmms-lab/LLaVA-OneVision-1.5-4B-Instruct",
                     "livr_core.backbones.llava_ov:load_llava_onevision_15",
                     "livr_core.backbones.llava_ov:LlavaOneVision15Adapter"),
        # Tiny random-initialised backbones built in code: tests and the demo.
        BackboneSpec("tiny-qwen2.5-vl", "tiny-Qwen2.5-VL", None,
                     f"{_TINY}:build_tiny_qwen2_5_vl", f"{_QWEN}:QwenVLAdapter"),
        BackboneSpec("tiny-qwen3-vl", "tiny-Qwen3-VL", None,
                     f"{_TINY}:build_tiny_qwen3_vl", f"{_QWEN}:QwenVLAdapter"),
        BackboneSpec("tiny-llava", "tiny-LLaVA", None, f"{_TINY}:build_tiny_llava",
                     "livr_core.backbones.base:BackboneAdapter"),
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
    "BackboneSpec",
    "BackboneUnavailable",
    "get_backbone",
    "load_backbone",
]
