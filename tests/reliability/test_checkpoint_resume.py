"""A damaged newest checkpoint costs only itself: the trainer falls back to the previous valid
one, says so, moves the damaged one aside, and ends bit-identical to an uninterrupted run; when
no checkpoint verifies, it stops with every checkpoint and its damaged file named."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from livr_core.checkpoint import (
    TRAINABLE_FILE,
    CheckpointError,
    checkpoint_name,
    list_checkpoints,
)
from livr_core.trainer import StepInfo
from tests.livr_core.test_trainer import RESUME_CONFIG, Killed, _samples, _trainer

CONFIG = replace(RESUME_CONFIG, select="final")  # no validation: the trajectory is the point


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _kill_after(micro_steps: int):
    seen = 0

    def kill(info: StepInfo) -> None:
        nonlocal seen
        seen += 1
        if seen == micro_steps:
            raise Killed

    return kill


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_newest_checkpoint_falls_back_and_ends_bit_identical(tmp_path, caplog):
    samples = _samples(5)
    straight = _trainer(tmp_path / "a", CONFIG, samples).fit()
    with pytest.raises(Killed):  # killed in stage 2 after update 5; checkpoints 3 and 4 kept
        _trainer(tmp_path / "b", CONFIG, samples, on_micro_step=_kill_after(9)).fit()
    run = tmp_path / "b"
    assert [p.name for p in list_checkpoints(run)] == [checkpoint_name(3), checkpoint_name(4)]
    _truncate(run / checkpoint_name(4) / TRAINABLE_FILE)  # e.g. a full disk while copying

    torch.manual_seed(1234)  # a new process
    with caplog.at_level(logging.WARNING, logger="livr_core.checkpoint"):
        resumed = _trainer(run, CONFIG, samples).fit()
    assert resumed.resumed_from == run / checkpoint_name(3)
    assert f"checkpoint {checkpoint_name(4)} is damaged" in caplog.text
    assert "trainable.safetensors" in caplog.text and "truncated" in caplog.text
    assert f"resuming from the previous checkpoint, {checkpoint_name(3)}" in caplog.text
    assert (run / f"{checkpoint_name(4)}.damaged").is_dir()  # kept for inspection

    assert resumed.global_step == straight.global_step == 9
    final_a = load_file(str(tmp_path / "a" / "final" / TRAINABLE_FILE))
    final_b = load_file(str(run / "final" / TRAINABLE_FILE))
    assert final_a.keys() == final_b.keys() and len(final_a) > 0
    assert all(torch.equal(final_a[n], final_b[n]) for n in final_a)
    assert straight.history == resumed.history


def test_no_valid_checkpoint_is_an_error_naming_each(tmp_path: Path) -> None:
    samples = _samples(5)
    with pytest.raises(Killed):
        _trainer(tmp_path, CONFIG, samples, on_micro_step=_kill_after(9)).fit()
    (tmp_path / checkpoint_name(3) / "progress.json").write_text("{not json")
    _truncate(tmp_path / checkpoint_name(4) / "training_state.safetensors")
    with pytest.raises(CheckpointError) as err:
        _trainer(tmp_path, CONFIG, samples).fit()
    text = str(err.value)
    assert f"no checkpoint under {tmp_path} can be resumed" in text
    assert str(tmp_path / checkpoint_name(4) / "training_state.safetensors") in text
    assert str(tmp_path / checkpoint_name(3) / "progress.json") in text
    assert "to start this run over" in text
