"""Training checkpoints: what is written, written atomically, and restored exactly on resume.

Owns `Progress`, RNG capture/restore, model export (`write_model`, `load_trainable`) and the
checkpoint directory protocol (`save_checkpoint`, `read_checkpoint`, `latest_checkpoint`).

A checkpoint `<root>/checkpoint-<global step>/` holds
* `adapter/`: the peft adapter (`save_pretrained`, safetensors: LoRA and the K latent rows as
  peft's trainable-token delta), the portable artifact: `PeftModel.from_pretrained(base, dir)`
  on an identically prepared base (same backbone, `add_latent_tokens` first);
* `trainable.safetensors`: every trainable tensor by name (LoRA + latent rows, or the language
  model in full mode, where there is no LoRA adapter), what a resume restores;
* `training_state.pt`: optimizer and scheduler state dicts;
* `rng-<process>.pt`: the Python, NumPy, torch CPU and CUDA generator states of each process
  (dropout draws). The data order needs no state: it is a pure function of (seed, stage, epoch),
  and the counters in `progress.json` say how far into it the run is;
* `progress.json`: the counters (`Progress`) and the run's fingerprint, so a resume with another
  configuration or another training set is refused.

Checkpoints are only taken between optimizer updates (no gradient is pending), so these states
are the whole training state. Each is written into a hidden temporary directory that is renamed
into place once complete (files fsynced first): a run killed while saving leaves the previous
checkpoint as the latest, never a partial one. Exported models (`best/`, `final/`) are the same
model files without the training state.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from livr_core.distributed import Runtime

CHECKPOINT_PREFIX = "checkpoint-"
ADAPTER_DIR = "adapter"
TRAINABLE_FILE = "trainable.safetensors"
STATE_FILE = "training_state.pt"
PROGRESS_FILE = "progress.json"


@dataclass
class Progress:
    """How far a run is: the position to continue from, plus per-epoch results so far."""

    stage: int = 0  # index into the stages (0: stage 1, bottleneck; 1: stage 2, causal)
    epoch: int = 0  # epoch within the stage being run (== the stage's epochs once it is done)
    micro_step: int = 0  # micro-batches of `epoch` already trained on (this process)
    stage_step: int = 0  # optimizer updates in this stage (the scheduler's step)
    global_step: int = 0  # optimizer updates over the run
    epoch_loss_sum: float = 0.0  # running loss of the current epoch, for its record
    epoch_loss_count: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per finished epoch
    best_metric: float | None = None  # the best validation metric so far (exported in best/)


def capture_rng() -> dict[str, Any]:
    """Every generator the training loop draws from (dropout, any Python/NumPy use)."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


def trainable_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every trainable parameter by name, as contiguous CPU tensors (for safetensors)."""
    return {
        name: param.detach().to("cpu").contiguous()
        for name, param in model.named_parameters()
        if param.requires_grad
    }


def write_model(model: nn.Module, directory: Path) -> None:
    """The trained part of `model`: the peft adapter (if any) and every trainable tensor."""
    directory.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "peft_config"):
        model.save_pretrained(directory / ADAPTER_DIR, safe_serialization=True)
    save_file(trainable_tensors(model), str(directory / TRAINABLE_FILE))


@torch.no_grad()
def load_trainable(model: nn.Module, directory: Path) -> None:
    """Copy the trainable tensors saved by `write_model` into `model` (bit-exact)."""
    saved = load_file(str(Path(directory) / TRAINABLE_FILE))
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if saved.keys() != params.keys():
        missing, extra = params.keys() - saved.keys(), saved.keys() - params.keys()
        raise ValueError(
            f"{directory} does not match the model's trainable parameters "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(extra)[:3]})"
        )
    for name, param in params.items():
        param.copy_(saved[name])


def checkpoint_name(global_step: int) -> str:
    return f"{CHECKPOINT_PREFIX}{global_step:08d}"


def latest_checkpoint(root: Path) -> Path | None:
    """The complete checkpoint with the most optimizer updates (temporary dirs are hidden)."""
    found = sorted(Path(root).glob(f"{CHECKPOINT_PREFIX}*")) if Path(root).is_dir() else []
    return found[-1] if found else None


def save_checkpoint(
    root: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: Progress,
    fingerprint: dict[str, Any],
    runtime: Runtime,
    keep_last: int,
) -> Path:
    """Write a checkpoint of `progress` atomically; prune to the `keep_last` newest. Collective."""
    target = Path(root) / checkpoint_name(progress.global_step)
    with atomic_directory(target, runtime) as tmp:
        torch.save(capture_rng(), tmp / f"rng-{runtime.process_index}.pt")
        runtime.barrier()  # every process's RNG file is in before the main one commits
        if runtime.is_main:
            write_model(model, tmp)
            torch.save(
                {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
                tmp / STATE_FILE,
            )
            progress_json = {"progress": asdict(progress), "fingerprint": fingerprint}
            (tmp / PROGRESS_FILE).write_text(json.dumps(progress_json, indent=1))
    if runtime.is_main:
        for old in sorted(Path(root).glob(f"{CHECKPOINT_PREFIX}*"))[:-keep_last]:
            shutil.rmtree(old)
    runtime.barrier()
    return target


def export_model(
    target: Path, model: nn.Module, runtime: Runtime, metadata: dict[str, Any]
) -> None:
    """Write `model`'s trained part to `target` (e.g. best/, final/) atomically. Collective."""
    with atomic_directory(Path(target), runtime) as tmp:
        if runtime.is_main:
            write_model(model, tmp)
            (tmp / "metadata.json").write_text(json.dumps(metadata, indent=1))
    runtime.barrier()


@dataclass
class CheckpointState:
    """What `read_checkpoint` returns: the counters and the states to load into fresh objects."""

    progress: Progress
    fingerprint: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, Any]


def read_checkpoint(path: Path, process_index: int = 0) -> CheckpointState:
    """Load a checkpoint's training state (the model tensors go through `load_trainable`)."""
    path = Path(path)
    saved = json.loads((path / PROGRESS_FILE).read_text())
    # Our own files (optimizer tensors plus Python/NumPy RNG tuples): full unpickling is needed.
    states = torch.load(path / STATE_FILE, map_location="cpu", weights_only=False)
    rng = torch.load(path / f"rng-{process_index}.pt", weights_only=False)
    return CheckpointState(
        progress=Progress(**saved["progress"]),
        fingerprint=saved["fingerprint"],
        optimizer=states["optimizer"],
        scheduler=states["scheduler"],
        rng=rng,
    )


@contextmanager
def atomic_directory(target: Path, runtime: Runtime) -> Iterator[Path]:
    """Yield a temporary sibling of `target`; rename it into place when the block succeeds."""
    tmp = target.with_name(f".tmp-{target.name}")
    if runtime.is_main:
        shutil.rmtree(tmp, ignore_errors=True)  # left by a run killed while saving
        tmp.mkdir(parents=True)
    runtime.barrier()
    yield tmp
    runtime.barrier()
    if not runtime.is_main:
        return
    _fsync_tree(tmp)
    if target.exists():  # rename() cannot replace a non-empty directory: swap it out first
        old = target.with_name(f".old-{target.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old)
    else:
        os.replace(tmp, target)


def _fsync_tree(directory: Path) -> None:
    """Flush every file to disk so that the rename commits complete files, even on power loss."""
    for path in directory.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
