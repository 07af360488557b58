"""Fault injection for training checkpoints (`livr_core.checkpoint`, `livr_core.durable`):
a pickle payload planted in every file a resume reads never runs and the error names the file;
state round-trips exactly without pickle; a kill between the two renames of a checkpoint replace
is repaired by the next run, which says so; a pruning killed midway never leaves half a
checkpoint under a trusted name."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import peft
import pytest
import torch
from torch import nn

from livr_core import durable
from livr_core.checkpoint import (
    INDEX_FILE,
    LEGACY_STATE_FILE,
    CheckpointError,
    Progress,
    capture_rng,
    checkpoint_name,
    export_model,
    list_checkpoints,
    load_trainable,
    read_checkpoint,
    restore_rng,
    resume_from,
    save_checkpoint,
)
from livr_core.distributed import Runtime
from livr_core.plainstate import load_state, save_state
from livr_core.schedule import stage_scheduler

RUNTIME = Runtime(device=torch.device("cpu"))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.lin(x))


def _trained(root: Path, steps: int = 2, keep_last: int = 3) -> tuple[nn.Module, list[Path]]:
    """A LoRA-wrapped net trained `steps` AdamW steps, checkpointed after each one."""
    torch.manual_seed(0)
    model = peft.get_peft_model(_Net(), peft.LoraConfig(r=2, target_modules=["lin"]))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    scheduler = stage_scheduler(optimizer, 10, 0.1)
    written = []
    for step in range(1, steps + 1):
        model(torch.randn(3, 4)).sum().backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        written.append(save_checkpoint(root, model, optimizer, scheduler,
                                       Progress(global_step=step, stage_step=step),
                                       {"seed": 1}, RUNTIME, keep_last))
    return model, written


class _Payload:
    """Unpickling this creates the marker file: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant(path: Path, marker: Path) -> None:
    """Replace `path` with a torch.save file whose unpickling runs `_Payload` (what a hostile
    or tampered checkpoint would hold)."""
    path.unlink()
    torch.save({"optimizer": _Payload(marker), "python": _Payload(marker)}, path)


def _resign(folder: Path) -> None:
    """Rewrite the index so it matches the tampered files: the parsers alone must refuse."""
    index_path = folder / INDEX_FILE
    index = json.loads(index_path.read_text())
    for rel in index["files"]:
        data = (folder / rel).read_bytes()
        index["files"][rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    index_path.write_text(json.dumps(index))


# What a resume parses; every other file is checked against the index only (sizes, sha256).
READ_ON_RESUME = {"index.json", "progress.json", "trainable.safetensors",
                  "training_state.safetensors", "rng-0.safetensors"}


def _resume_reads(folder: Path, model: nn.Module) -> None:
    """Everything a resume reads from a checkpoint folder."""
    read_checkpoint(folder)
    load_trainable(model, folder)


def test_a_pickle_payload_in_any_checkpoint_file_never_runs(tmp_path: Path) -> None:
    model, (_, ckpt) = _trained(tmp_path / "run")
    _resume_reads(ckpt, model)  # the untouched checkpoint reads back
    files = sorted(p.relative_to(ckpt) for p in ckpt.rglob("*") if p.is_file())
    assert {f.as_posix() for f in files} >= READ_ON_RESUME | {"adapter/adapter_model.safetensors"}
    for rel in files:
        for resign in (False, True):
            copy = tmp_path / f"{rel.as_posix().replace('/', '_')}-{resign}"
            shutil.copytree(ckpt, copy)
            marker = tmp_path / "code-ran"
            _plant(copy / rel, marker)
            if resign and rel.name != INDEX_FILE:
                _resign(copy)
            if resign and rel.as_posix() not in READ_ON_RESUME:
                _resume_reads(copy, model)  # a file a resume never opens (adapter/...)
            else:
                with pytest.raises(CheckpointError) as err:
                    _resume_reads(copy, model)
                assert str(copy / rel) in str(err.value), (rel, resign, str(err.value))
            assert not marker.exists(), f"a payload in {rel} ran"


def test_a_pickled_checkpoint_of_an_older_version_is_refused_unread(tmp_path: Path) -> None:
    model, (_, ckpt) = _trained(tmp_path / "run")
    for name in ("training_state.safetensors", "rng-0.safetensors", INDEX_FILE):
        (ckpt / name).unlink()
    marker = tmp_path / "code-ran"
    for name in (LEGACY_STATE_FILE, "rng-0.pt"):  # the old layout, with payloads
        torch.save({"optimizer": _Payload(marker)}, ckpt / name)
    with pytest.raises(CheckpointError, match="never loaded") as err:
        _resume_reads(ckpt, model)
    assert str(ckpt / LEGACY_STATE_FILE) in str(err.value)
    assert not marker.exists()


# Any way of reading a file that can run code: unpickling libraries, NumPy object arrays, pandas
# pickles, and torch.load at all (our state is safetensors; a weights_only load would be allowed,
# but no module needs one).
UNPICKLING = (r"weights_only=False|pickle\.loads?\(|import (c?pickle|dill|joblib|shelve)|"
              r"from (pickle|dill|joblib) |allow_pickle=True|read_pickle|torch\.load\(")


def test_no_module_of_ours_unpickles_files() -> None:
    repo = Path(__file__).resolve().parents[2]
    found = subprocess.run(
        ["git", "grep", "-n", "-E", UNPICKLING, "--", "builders", "dedup", "harness",
         "livr_core", "bench"],
        cwd=repo, capture_output=True, text=True, check=False,
    )
    assert found.stdout == "", found.stdout


def test_state_round_trips_exactly_without_pickle(tmp_path: Path) -> None:
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    np.random.standard_normal()  # a cached Gaussian in NumPy's state
    rng = capture_rng()
    tree = {"rng": rng, "ids": {0: (1.5, None), 7: [True, "x"]}, "nan": float("inf"),
            "tensors": [torch.arange(3, dtype=torch.int16), torch.tensor(2.5)]}
    save_state(tmp_path / "s.safetensors", tree)
    back = load_state(tmp_path / "s.safetensors")
    assert back["ids"] == {0: (1.5, None), 7: [True, "x"]} and back["nan"] == float("inf")
    assert back["tensors"][0].dtype == torch.int16 and back["tensors"][1].shape == ()
    assert all(torch.equal(a, b) for a, b in zip(back["tensors"], tree["tensors"]))
    first = (random.random(), np.random.standard_normal(), torch.rand(2))
    restore_rng(back["rng"])
    second = (random.random(), np.random.standard_normal(), torch.rand(2))
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])
    with pytest.raises(TypeError, match="without pickle"):
        save_state(tmp_path / "t.safetensors", {"f": open})


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _as_dead(root: Path, pid: int) -> None:
    """Give every leftover of this process in `root` to the dead `pid` (the kill happened)."""
    for p in root.iterdir():
        suffix = f"-{durable.host()}-{os.getpid()}"
        if p.name.startswith(".") and p.name.endswith(suffix):
            os.replace(p, p.with_name(p.name[: -len(str(os.getpid()))] + str(pid)))


def _kill_at_rename(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    real = os.replace
    calls = []

    def replace(src, dst):
        calls.append(src)
        if len(calls) == n:
            raise KeyboardInterrupt("killed")
        real(src, dst)

    monkeypatch.setattr(durable.os, "replace", replace)


def test_a_kill_between_the_renames_of_a_replace_is_rolled_back(tmp_path, monkeypatch, caplog):
    root = tmp_path / "run"
    model, _ = _trained(root)
    export_model(root / "best", model, RUNTIME, {"epoch": 1})
    _kill_at_rename(monkeypatch, 2)  # old version moved aside, new one not yet in place
    with pytest.raises(KeyboardInterrupt):
        export_model(root / "best", model, RUNTIME, {"epoch": 2})
    monkeypatch.undo()
    assert not (root / "best").exists()
    _as_dead(root, _dead_pid())
    with caplog.at_level(logging.WARNING, logger="livr_core.durable"):
        found = resume_from(root, RUNTIME)
    assert found is not None and found.path.name == checkpoint_name(2)
    assert json.loads((root / "best" / "metadata.json").read_text()) == {"epoch": 1}
    assert "rolled back an interrupted replace" in caplog.text and "best" in caplog.text
    assert "removed .best.tmp-" in caplog.text  # the dead writer's temporary folder
    assert sorted(p.name for p in root.iterdir()) == [
        "best", checkpoint_name(1), checkpoint_name(2)]


def test_a_kill_after_publishing_finishes_the_replace(tmp_path, monkeypatch, caplog):
    root = tmp_path / "run"
    model, _ = _trained(root)
    export_model(root / "final", model, RUNTIME, {"epoch": 1})
    real_remove = durable.remove

    def die_on_old(path: Path) -> None:
        if ".old-" in path.name and path.exists():
            raise KeyboardInterrupt("killed")  # new version published, old copy not yet gone
        real_remove(path)

    monkeypatch.setattr(durable, "remove", die_on_old)
    with pytest.raises(KeyboardInterrupt):
        export_model(root / "final", model, RUNTIME, {"epoch": 2})
    monkeypatch.undo()
    _as_dead(root, _dead_pid())
    with caplog.at_level(logging.WARNING, logger="livr_core.durable"):
        resume_from(root, RUNTIME)
    assert json.loads((root / "final" / "metadata.json").read_text()) == {"epoch": 2}
    assert "finished an interrupted replace" in caplog.text
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


def test_a_pruning_killed_midway_leaves_no_half_checkpoint(tmp_path, monkeypatch):
    root = tmp_path / "run"
    real_rmtree = shutil.rmtree

    def die_midway(path, *args, **kwargs):
        next(Path(path).rglob("*.safetensors")).unlink()  # part of the folder is gone ...
        raise KeyboardInterrupt("killed")  # ... when the kill comes

    monkeypatch.setattr(durable.shutil, "rmtree", die_midway)
    with pytest.raises(KeyboardInterrupt):
        _trained(root, steps=3, keep_last=2)  # prunes checkpoint 1 after writing 3
    monkeypatch.setattr(durable.shutil, "rmtree", real_rmtree)
    # Checkpoint 1 is no longer under its name: nothing half-deleted looks like a checkpoint.
    assert [p.name for p in list_checkpoints(root)] == [checkpoint_name(2), checkpoint_name(3)]
    for path in list_checkpoints(root):
        read_checkpoint(path)
    _as_dead(root, _dead_pid())
    resume_from(root, RUNTIME)
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


def test_two_writers_never_share_a_temporary_folder(tmp_path: Path) -> None:
    target = tmp_path / checkpoint_name(1)
    ours = durable.temp_path(target, "tmp")
    assert ours.name == f".{target.name}.tmp-{durable.host()}-{os.getpid()}"
    theirs = subprocess.run(
        [sys.executable, "-c", ("import sys; from pathlib import Path; from livr_core import "
                                "durable; print(durable.temp_path(Path(sys.argv[1]), 'tmp'))"),
         str(target)],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
    ).stdout.strip()
    assert theirs != str(ours) and theirs.startswith(str(ours).rsplit("-", 1)[0])
