"""Fixtures for the harness tests: fake built splits (tiny, no real images) in a tmp dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.fakes import write_built

TABLE3_TASKS = ("localization", "semantic_correspondence", "functional_correspondence")


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """Train/val/test splits (6/4/5 examples) of Table 3's tasks plus counting."""
    return write_built(tmp_path / "built", (*TABLE3_TASKS, "counting"))
