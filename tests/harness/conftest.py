"""Fixtures for the harness tests: fake built splits (tiny, no real images) in a tmp dir, and
one torch / BLAS thread for the modules that train tiny models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.fakes import write_built

TABLE3_TASKS = ("localization", "semantic_correspondence", "functional_correspondence")


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """Train/val/test splits (6/4/5 examples) of Table 3's tasks plus counting."""
    return write_built(tmp_path / "built", (*TABLE3_TASKS, "counting"))


@pytest.fixture
def single_thread() -> Iterator[None]:
    """Tiny models and a small t-SNE gain nothing from threads on a busy 2-core machine, and
    OpenMP spin-waiting there makes them many times slower. Modules opt in with
    `pytestmark = pytest.mark.usefixtures("single_thread")`."""
    import torch  # here: most harness tests never need torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)
