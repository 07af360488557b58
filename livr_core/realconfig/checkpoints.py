"""One entry point for real-configuration test checkpoints: `write_checkpoint(backbone, out)`.

Owns `WRITERS` (backbone name -> writer) and `write_checkpoint`. A writer is a function
`(out, *, widths="ci", **options) -> Path` that writes a directory loadable with
`LoadOptions(source=out)` / `--executor-opt source=out`; an entry is either the function or its
"module:function" path, imported on first use (so adding a backbone is one line here and its own
module). The backbone names are those of `livr_core.backbones`.

    from livr_core.realconfig.checkpoints import write_checkpoint
    directory = write_checkpoint("qwen2.5-vl-3b", tmp / "qwen2.5-vl-3b")       # CI widths
    directory = write_checkpoint("qwen3-vl-4b", tmp / "q3", widths="real")     # published widths
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal

from livr_core.realconfig.qwen import QWEN_CHECKPOINTS, write_qwen_checkpoint

Writer = Callable[..., Path]

WRITERS: dict[str, Writer | str] = {
    **{name: partial(write_qwen_checkpoint, name) for name in QWEN_CHECKPOINTS},
    "llava-onevision-1.5-4b": "livr_core.realconfig.llava_ov15:write_llava_ov15_checkpoint",
}


def _writer(backbone: str) -> Writer:
    try:
        entry = WRITERS[backbone]
    except KeyError:
        raise KeyError(
            f"no real-configuration writer for {backbone!r}; known: {', '.join(sorted(WRITERS))}"
        ) from None
    if isinstance(entry, str):
        module, _, attribute = entry.partition(":")
        entry = getattr(importlib.import_module(module), attribute)
    return entry


def write_checkpoint(
    backbone: str, out: str | Path, *, widths: Literal["ci", "real"] = "ci", **options: Any
) -> Path:
    """Write the real-configuration checkpoint directory of `backbone` to `out`; returns it.

    `widths="ci"` reduces widths (seconds on a CPU); "real" keeps the published ones (GPU
    checks). Other options (`layers`, `seed`, ...) go to the backbone's writer."""
    return _writer(backbone)(Path(out), widths=widths, **options)
