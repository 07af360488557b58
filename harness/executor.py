"""The model side's interface: what a cell executor gets, what it returns, and how it is chosen.

Owns `CellExecutor` (the protocol `harness.train_executor.LivrExecutor` implements), `CellData`, `CellFolder`,
`CellResult`, `ExecutorUnavailable`, `make_executor`, and two built-in executors that need no
model: `oracle` (answers the gold) and `constant` (always the same letter / count). The built-ins
exist so the run store, resume, sharding and reports can be tested and demonstrated end to end.

The contract, for an executor `ex`:
* `ex.name` names it in cell configs; `ex.fingerprint()` returns a JSON-able dict of whatever
  beyond the `CellConfig` changes its results (trainer defaults, batch size, precision, code
  version). Both enter the cell hash, so a changed trainer is a different cell.
* `ex.run(cell, data, folder)` trains `cell.method` on `data.train()` (none for zero-shot),
  keeps the checkpoint `cell.checkpoint` asks for ("best": highest `data.val_accuracy(...)`
  after an epoch; "final": the last), and returns the raw generated text for EVERY record of
  `data.test()`, keyed by idx. The harness parses and scores; the executor never does.
* Checkpoints and any logs go under `folder.checkpoints` / `folder.root`. When `folder.resumed`
  is true a previous attempt of this same config was interrupted or failed: continue from what
  `folder.checkpoints` holds (the config hash guarantees it is the same run).
* Raise on error: the harness records the traceback in the cell and goes on with other cells.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from builders.io import iter_records, split_dir
from builders.record import Record
from builders.registry import load_registry
from harness.cells import CellConfig
from harness.errors import ConfigError
from harness.items import Item, macro_mean
from harness.metrics import score, task_metrics


class ExecutorUnavailable(ConfigError):
    """The named executor does not exist (yet) or cannot be imported."""


@dataclass(frozen=True)
class CellFolder:
    root: Path  # the cell's folder in the run store
    checkpoints: Path  # root / "checkpoints", created
    attempt: int  # 1 for a first run
    resumed: bool  # an earlier attempt was interrupted or failed; its checkpoints are here


@dataclass(frozen=True)
class CellResult:
    texts: Mapping[str, str]  # test idx -> raw generated text, for every test record
    info: Mapping[str, Any] = field(default_factory=dict)  # JSON-able; stored in metrics.json


class CellData:
    """The built splits of one cell, read lazily, with the cell's limits applied.

    Reading goes through `builders.io.iter_records`: the split is checked against its manifest
    (no missing, extra or truncated shard) and every shard read is checked against its sha256
    and the manifest's ids, so a damaged split fails the cell with a message naming it and the
    fix instead of training or scoring on part of it.

    Records come in split order (each split's first `limit` records; train also at most
    `train_per_task` per task); multi-task lists concatenate the tasks in table order, and
    shuffling them is the trainer's job (with `cell.seed`).
    """

    def __init__(self, built: Path, cell: CellConfig) -> None:
        self.built = Path(built)
        self.cell = cell
        self._cache: dict[tuple[str, str], list[Record]] = {}

    def records(self, split: str, task: str) -> list[Record]:
        key = (split, task)
        if key not in self._cache:
            caps = [c for c in (self.cell.limit,) if c is not None]
            if split == "train" and self.cell.train_per_task is not None:
                caps.append(self.cell.train_per_task)
            rows = iter_records(split_dir(self.built, task, split))
            self._cache[key] = list(itertools.islice(rows, min(caps)) if caps else rows)
        return self._cache[key]

    def _all(self, split: str, tasks: tuple[str, ...]) -> list[Record]:
        return [r for t in tasks for r in self.records(split, t)]

    def train(self) -> list[Record]:
        return self._all("train", self.cell.train_tasks)

    def val(self) -> list[Record]:
        return self._all("val", self.cell.train_tasks)

    def test(self) -> list[Record]:
        return self._all("test", self.cell.eval_tasks)

    def val_accuracy(self, texts: Mapping[str, str]) -> float:
        """Macro accuracy (%) over the train tasks' val splits of raw texts keyed by idx, scored
        exactly as the test set is (a missing or unparseable text is wrong)."""
        registry = load_registry()
        per_task = []
        for task in self.cell.train_tasks:
            spec = registry.resolve(task)
            scored = [
                score(Item.from_record(r, spec), texts.get(r.idx, ""))
                for r in self.records("val", task)
            ]
            per_task.append(task_metrics(scored, spec).accuracy)
        return macro_mean(per_task) or 0.0


@runtime_checkable
class CellExecutor(Protocol):
    name: str

    def fingerprint(self) -> Mapping[str, Any]: ...

    def run(self, cell: CellConfig, data: CellData, folder: CellFolder) -> CellResult: ...


class OracleExecutor:
    """Answers every test record with its gold answer, in words the parser must handle."""

    name = "oracle"

    def fingerprint(self) -> Mapping[str, Any]:
        return {}

    def run(self, cell: CellConfig, data: CellData, folder: CellFolder) -> CellResult:
        texts = {
            r.idx: (f"The answer is {r.answer}." if r.answer.startswith("(")
                    else f"There are {r.answer} objects.")
            for r in data.test()
        }
        return CellResult(texts)


class ConstantExecutor:
    """Always the same answer: the constant-letter baseline as a run."""

    name = "constant"

    def __init__(self, letter: str = "A", count: str = "2") -> None:
        self.letter, self.count = letter.upper(), count

    def fingerprint(self) -> Mapping[str, Any]:
        return {"letter": self.letter, "count": self.count}

    def run(self, cell: CellConfig, data: CellData, folder: CellFolder) -> CellResult:
        return CellResult({
            r.idx: f"({self.letter})" if r.answer.startswith("(") else self.count
            for r in data.test()
        })


# Name -> factory, or "module:attribute" of a factory imported on demand (the trainer's module
# is imported only when a run asks for it).
EXECUTORS: dict[str, Callable[..., CellExecutor] | str] = {
    "livr": "harness.train_executor:LivrExecutor",
    "oracle": OracleExecutor,
    "constant": ConstantExecutor,
}


def _import(target: str) -> Callable[..., CellExecutor]:
    module, _, attr = target.partition(":")
    if importlib.util.find_spec(module) is None:
        raise ExecutorUnavailable(f"executor module {module!r} does not exist")
    factory = getattr(importlib.import_module(module), attr, None)
    if factory is None:
        raise ExecutorUnavailable(f"{module} has no {attr!r}")
    return factory


def make_executor(spec: str, options: Mapping[str, str] | None = None) -> CellExecutor:
    """The executor named `spec` (a key of EXECUTORS or "module:factory"), built with `options`."""
    entry = EXECUTORS.get(spec, spec if ":" in spec else None)
    if entry is None:
        raise ExecutorUnavailable(
            f"unknown executor {spec!r}; valid: {', '.join(EXECUTORS)} or module:factory"
        )
    try:
        factory = _import(entry) if isinstance(entry, str) else entry
    except ExecutorUnavailable as exc:
        raise ExecutorUnavailable(f"executor {spec!r}: {exc}") from None
    try:
        executor = factory(**dict(options or {}))
    except TypeError as exc:
        raise ExecutorUnavailable(f"executor {spec!r} rejected its options: {exc}") from None
    if not isinstance(executor, CellExecutor):
        raise ExecutorUnavailable(f"{spec!r} did not build a CellExecutor (name, fingerprint, run)")
    return executor


def executor_identity(executor: CellExecutor) -> dict[str, Any]:
    """What of the executor enters the cell hash."""
    return {"name": executor.name, **dict(executor.fingerprint())}
