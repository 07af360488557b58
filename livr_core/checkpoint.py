"""Training checkpoints: what is written, written crash-safely, verified and restored exactly.

Owns `Progress`, RNG capture/restore, model export (`write_model`, `load_trainable`) and the
checkpoint directory protocol (`save_checkpoint`, `read_checkpoint`, `latest_checkpoint`,
`resume_from`).

A checkpoint `<root>/checkpoint-<global step>/` holds
* `adapter/`: the peft adapter (`save_pretrained`, safetensors: LoRA and the K latent rows as
  peft's trainable-token delta), the portable artifact: `PeftModel.from_pretrained(base, dir)`
  on an identically prepared base (same backbone, `add_latent_tokens` first);
* `trainable.safetensors`: every trainable tensor by name (LoRA + latent rows, or the language
  model in full mode, where there is no LoRA adapter), what a resume restores;
* `training_state.safetensors`: optimizer and scheduler state dicts;
* `rng-<process>.safetensors`: the Python, NumPy, torch CPU and CUDA generator states of each
  process (dropout draws). The data order needs no state: it is a pure function of (seed, stage,
  epoch), and the counters in `progress.json` say how far into it the run is;
* `progress.json`: the counters (`Progress`) and the run's fingerprint, so a resume with another
  configuration or another training set is refused;
* `index.json`, written last: every file above with its size and sha256.

Nothing is pickled: state files are safetensors with the non-tensor part as JSON
(`livr_core.plainstate`), so no checkpoint file can make a resume run code. A file that does not
parse, or differs from the index (truncated, changed), is named in a `CheckpointError`.

Checkpoints are only taken between optimizer updates (no gradient is pending), so these states
are the whole training state. Each is written into a hidden temporary folder (`.<name>.tmp-<host>-
<pid>`, so two processes never share one) that is fsynced and renamed into place once complete
(`livr_core.durable`); pruning renames before deleting. A kill at any instant leaves the
previous checkpoints whole, and the next run (`resume_from`) repairs what the kill left, says so,
and resumes from the newest checkpoint that verifies against its index, falling back past a
damaged one (moved aside as `<name>.damaged`, kept for inspection) with a warning. Checkpoints of
older versions (pickled `training_state.pt`) are refused, never unpickled. Exported models
(`best/`, `final/`) are the same model files without the training state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from livr_core import durable
from livr_core.distributed import Runtime
from livr_core.plainstate import load_state, save_state

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
ADAPTER_DIR = "adapter"
TRAINABLE_FILE = "trainable.safetensors"
STATE_FILE = "training_state.safetensors"
PROGRESS_FILE = "progress.json"
INDEX_FILE = "index.json"
INDEX_FORMAT = 1
DAMAGED_SUFFIX = ".damaged"
# The pickled state of checkpoints written before version 0.1's safetensors state: never loaded.
LEGACY_STATE_FILE = "training_state.pt"
_CHECKPOINT_RE = re.compile(rf"^{CHECKPOINT_PREFIX}\d+$")
_HASH_CHUNK = 1 << 20


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged or not ours; the message names the file."""


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


def rng_file(process_index: int) -> str:
    return f"rng-{process_index}.safetensors"


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
    path = Path(directory) / TRAINABLE_FILE
    saved = _parse(path, lambda p: load_file(str(p)))
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


def list_checkpoints(root: Path) -> list[Path]:
    """Every published checkpoint folder under `root`, oldest first (hidden temporary folders
    and `.damaged` ones are not checkpoints)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if _CHECKPOINT_RE.match(p.name) and p.is_dir())


def latest_checkpoint(root: Path) -> Path | None:
    """The published checkpoint with the most optimizer updates (unverified: see `resume_from`)."""
    found = list_checkpoints(root)
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
        save_state(tmp / rng_file(runtime.process_index), capture_rng())
        runtime.barrier()  # every process's RNG file is in before the main one indexes them
        if runtime.is_main:
            write_model(model, tmp)
            save_state(
                tmp / STATE_FILE,
                {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
            )
            progress_json = {"progress": asdict(progress), "fingerprint": fingerprint}
            (tmp / PROGRESS_FILE).write_text(json.dumps(progress_json, indent=1))
            write_index(tmp)
    if runtime.is_main:
        for old in list_checkpoints(root)[:-keep_last]:
            durable.discard(old)
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


# --------------------------------------------------------------------------- index, reading


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_index(folder: Path) -> None:
    """`index.json`: every file under `folder` (relative path) with its size and sha256."""
    files = {
        p.relative_to(folder).as_posix(): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != INDEX_FILE
    }
    index = {"format": INDEX_FORMAT, "files": files}
    (folder / INDEX_FILE).write_text(json.dumps(index, indent=1, sort_keys=True))


def verify_checkpoint(path: Path, required: Iterable[str]) -> None:
    """Raise `CheckpointError` naming the file unless every file of `path`'s index is present
    with its indexed size and sha256 and every `required` file is indexed."""
    index_path = path / INDEX_FILE
    if not index_path.is_file():
        if (path / LEGACY_STATE_FILE).is_file():
            raise CheckpointError(
                f"{path / LEGACY_STATE_FILE}: a checkpoint of an older livr_core, whose training "
                "state is pickled; it is never loaded (unpickling a file can run code). Resume "
                "from a newer checkpoint, or start over (another output folder, or "
                "fit(resume=False))"
            )
        raise CheckpointError(f"{index_path}: missing, so the checkpoint cannot be verified")
    index = _parse(index_path, lambda p: json.loads(p.read_text(encoding="utf-8")))
    files = index.get("files") if isinstance(index, dict) else None
    if index.get("format") != INDEX_FORMAT or not isinstance(files, dict):
        raise CheckpointError(f"{index_path}: not a checkpoint index of format {INDEX_FORMAT}")
    for name in required:
        if name not in files:
            raise CheckpointError(f"{path / name}: not listed in {index_path}")
    for rel, entry in sorted(files.items()):
        if Path(rel).is_absolute() or ".." in Path(rel).parts or not isinstance(entry, dict):
            raise CheckpointError(f"{index_path}: invalid entry {rel!r}")
        file = path / rel
        if not file.is_file():
            raise CheckpointError(f"{file}: missing (listed in {INDEX_FILE})")
        size = file.stat().st_size
        if size != entry.get("bytes"):
            raise CheckpointError(f"{file}: {size} bytes, the index says {entry.get('bytes')} "
                                  "(truncated or changed after the checkpoint was written)")
        if _sha256(file) != entry.get("sha256"):
            raise CheckpointError(f"{file}: content differs from its sha256 in {INDEX_FILE} "
                                  "(damaged or changed after the checkpoint was written)")


def _parse(path: Path, reader: Any) -> Any:
    """`reader(path)`, with any failure (missing, truncated, not the format) as a
    `CheckpointError` naming the file."""
    try:
        return reader(path)
    except CheckpointError:
        raise
    except Exception as exc:  # every parser's error means the same: this file is bad
        raise CheckpointError(f"{path}: unreadable ({type(exc).__name__}: {exc})"[:500]) from exc


@dataclass
class CheckpointState:
    """What `read_checkpoint` returns: the counters and the states to load into fresh objects."""

    progress: Progress
    fingerprint: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, Any]


def read_checkpoint(path: Path, process_index: int = 0) -> CheckpointState:
    """Verify a checkpoint against its index and load its training state (the model tensors go
    through `load_trainable`). Raises `CheckpointError` naming the bad file."""
    path = Path(path)
    rng_name = rng_file(process_index)
    verify_checkpoint(path, (PROGRESS_FILE, TRAINABLE_FILE, STATE_FILE, rng_name))

    def progress_of(p: Path) -> tuple[Progress, dict[str, Any]]:
        saved = json.loads(p.read_text(encoding="utf-8"))
        return Progress(**saved["progress"]), dict(saved["fingerprint"])

    def states_of(p: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        states = load_state(p)
        return dict(states["optimizer"]), dict(states["scheduler"])

    def rng_of(p: Path) -> dict[str, Any]:
        rng = load_state(p)
        missing = {"python", "numpy", "torch", "cuda"} - set(rng)
        if missing:
            raise KeyError(f"no {', '.join(sorted(missing))} state")
        return rng

    progress, fingerprint = _parse(path / PROGRESS_FILE, progress_of)
    optimizer, scheduler = _parse(path / STATE_FILE, states_of)
    return CheckpointState(progress, fingerprint, optimizer, scheduler,
                           _parse(path / rng_name, rng_of))


@dataclass
class Resume:
    """The checkpoint a run continues from, and the newer ones it had to pass over."""

    path: Path
    state: CheckpointState
    damaged: list[tuple[Path, str]] = field(default_factory=list)  # (moved-aside path, why)


def resume_from(root: Path, runtime: Runtime) -> Resume | None:
    """The newest checkpoint under `root` that verifies, or None when there is none. Collective.

    First repairs what a killed process left (`durable.recover`, logged). A checkpoint that does
    not verify is logged, moved aside to `<name>.damaged` and passed over for the previous one;
    when checkpoints exist but none verifies, raises `CheckpointError` listing each one."""
    root = Path(root)
    if runtime.is_main:
        durable.recover(root)
    runtime.barrier()
    damaged: list[tuple[Path, str]] = []
    found: Resume | None = None
    for path in reversed(list_checkpoints(root)):
        try:
            found = Resume(path, read_checkpoint(path, runtime.process_index))
            break
        except CheckpointError as exc:
            damaged.append((path, str(exc)))
    runtime.barrier()  # every process has chosen before any checkpoint moves
    if damaged and found is None:
        lines = "\n".join(f"  {p.name}: {why}" for p, why in damaged)
        raise CheckpointError(
            f"no checkpoint under {root} can be resumed:\n{lines}\nmove them away (or delete "
            "them) to start this run over, or train into another output folder"
        )
    if found is None:
        return None
    for path, why in damaged:
        if runtime.is_main:
            aside = _aside(path)
            log.warning("checkpoint %s is damaged (%s); moved it to %s and resuming from the "
                        "previous checkpoint, %s", path.name, why, aside.name, found.path.name)
            path = aside
        found.damaged.append((path, why))
    runtime.barrier()
    return found


def _aside(path: Path) -> Path:
    target = path.with_name(path.name + DAMAGED_SUFFIX)
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}{DAMAGED_SUFFIX}{n}")
    path.rename(target)
    durable.fsync_dir(path.parent)
    return target


@contextmanager
def atomic_directory(target: Path, runtime: Runtime) -> Iterator[Path]:
    """Yield a temporary sibling of `target` (the main process's `.<name>.tmp-<host>-<pid>`,
    shared with the other processes of the run); publish it as `target` when the block
    succeeds, remove it when the block raises."""
    tmp = None
    if runtime.is_main:
        durable.recover(target.parent)  # leftovers of killed runs
        tmp = durable.temp_path(target, "tmp")
        durable.remove(tmp)
        tmp.mkdir(parents=True)
    tmp = Path(runtime.broadcast(str(tmp) if tmp else None))
    runtime.barrier()
    try:
        yield tmp
    except BaseException:
        if runtime.is_main:
            durable.remove(tmp)
        raise
    runtime.barrier()
    if runtime.is_main:
        durable.publish(tmp, target)
