"""Checkpoint files: atomic commits, the newest complete checkpoint, RNG and tensor round trips."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from livr_core.checkpoint import (
    TRAINABLE_FILE,
    atomic_directory,
    capture_rng,
    checkpoint_name,
    latest_checkpoint,
    load_trainable,
    restore_rng,
    write_model,
)
from livr_core.distributed import Runtime

RUNTIME = Runtime(device=torch.device("cpu"))


def test_a_save_killed_midway_leaves_no_checkpoint(tmp_path: Path) -> None:
    with atomic_directory(tmp_path / checkpoint_name(4), RUNTIME) as tmp:
        (tmp / "a.txt").write_text("complete")
    with (
        pytest.raises(KeyboardInterrupt),
        atomic_directory(tmp_path / checkpoint_name(8), RUNTIME) as tmp,
    ):
        (tmp / "a.txt").write_text("half")
        raise KeyboardInterrupt  # the process dies while writing
    assert latest_checkpoint(tmp_path) == tmp_path / checkpoint_name(4)
    assert not (tmp_path / checkpoint_name(8)).exists()
    # the next save of that name clears the leftover and commits
    with atomic_directory(tmp_path / checkpoint_name(8), RUNTIME) as tmp:
        (tmp / "a.txt").write_text("again")
    assert latest_checkpoint(tmp_path) == tmp_path / checkpoint_name(8)
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint_name(4), checkpoint_name(8)]


def test_an_existing_directory_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "best"
    with atomic_directory(target, RUNTIME) as tmp:
        (tmp / "old.txt").write_text("old")
    with atomic_directory(target, RUNTIME) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["best"]


def test_rng_states_round_trip() -> None:
    state = capture_rng()
    first = (random.random(), np.random.rand(), torch.rand(2))
    restore_rng(state)
    second = (random.random(), np.random.rand(), torch.rand(2))
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])


def test_trainable_tensors_round_trip_and_must_match(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[1].requires_grad_(False)
    write_model(model, tmp_path)
    assert (tmp_path / TRAINABLE_FILE).exists() and not (tmp_path / "adapter").exists()
    expected = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    load_trainable(model, tmp_path)
    assert torch.equal(model[0].weight, expected)
    model[1].requires_grad_(True)  # now the model expects tensors the file does not hold
    with pytest.raises(ValueError, match="does not match"):
        load_trainable(model, tmp_path)
