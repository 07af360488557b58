"""Fixtures for builder tests: miniature sources written once per session, and a build helper."""

from __future__ import annotations

from pathlib import Path

import pytest

from builders import miniature
from builders.build import BuildRequest, run_build
from builders.io import read_split
from builders.record import Record


@pytest.fixture(scope="session")
def mini_sources(tmp_path_factory) -> dict[str, Path]:
    """Every miniature source written once: source name -> its dataset folder (what
    --source-root points at). Tests must not modify these files."""
    return miniature.write_all(tmp_path_factory.mktemp("sources"))


def build_split(task: str, split: str, source_root: Path, out: Path, n: int, seed: int = 42,
                overwrite: bool = False) -> list[Record]:
    path = run_build(BuildRequest(task, split, source_root, out, n=n, seed=seed,
                                  overwrite=overwrite, progress=False))
    return read_split(path)
