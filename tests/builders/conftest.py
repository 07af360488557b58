"""A build helper for builder tests (the miniature sources are the session fixture `mini_sources`
of tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

from builders.build import BuildRequest, run_build
from builders.io import read_split
from builders.record import Record


def build_split(task: str, split: str, source_root: Path, out: Path, n: int, seed: int = 42,
                overwrite: bool = False) -> list[Record]:
    path = run_build(BuildRequest(task, split, source_root, out, n=n, seed=seed,
                                  overwrite=overwrite, progress=False))
    return read_split(path)
