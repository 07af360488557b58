"""The command lines that make built data, for hints (`harness run --dry-run`, missing splits).

Raw datasets are named by placeholders under one root, `/data/<source>` (`SOURCE_ROOT`): the
layout `build-task all --source-root /data` reads and the README's examples use; `build-task
--help` shows what each source folder must hold. A printed command is exact but for that root.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from builders.registry import TaskSpec

SOURCE_ROOT = "/data"


def source_root(source: str) -> str:
    """The placeholder folder of one raw dataset (`builders/sources/<source>.py` reads it)."""
    return f"{SOURCE_ROOT}/{source}"


def build_command(spec: TaskSpec, split: str, out: Path | str, overwrite: bool = False) -> str:
    """`build-task` for one split of `spec` into the built root `out` (replacing the folder
    there with `overwrite`)."""
    return (f"build-task {spec.name} --split {split} "
            f"--source-root {source_root(spec.source_for(split))} --out {out}"
            + (" --overwrite" if overwrite else ""))


def dedup_command(against: str, built: Path | str, tasks: Iterable[str], raw: bool) -> str:
    """`dedup` of `tasks`' train/val splits against the test set `against`; `raw`: also compare
    the raw source images (tasks whose builder draws markers on them), from the one root."""
    return (f"dedup --against {against} --built {built} --tasks {' '.join(tasks)}"
            + (f" --source-root {SOURCE_ROOT}" if raw else ""))
