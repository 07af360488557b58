"""Running a table's cells: skip finished ones, resume interrupted ones, isolate crashes, score.

Owns `RunSummary`, `check_conflicts`, `score_cell` and `run_cells`. What a cell runs is the
executor's business (`harness.executor`); where its files go is the store's (`harness.store`).

One process per cell: a cell runs under its store lock. A second process that finds the lock
held SKIPS the cell (reported as running elsewhere) rather than waiting: a cell can train for
hours, and the second process has other cells of its table (or shard) to run meanwhile; if the
first process dies the kernel frees the lock and the next `harness run` resumes the cell.
A cell with a damaged file is skipped and reported with the file named, and the others run.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builders.atomic import LockHeld
from builders.registry import load_registry
from harness.benchmarks import extra_metrics
from harness.cells import CellConfig
from harness.executor import CellData, CellExecutor, CellResult
from harness.items import Item, macro_mean
from harness.metrics import score, task_metrics
from harness.plan import Cell
from harness.store import DAMAGED, DAMAGED_FIX, DONE, RUNNING, ConfigConflict, Key, RunStore


@dataclass
class RunSummary:
    ran: list[Key] = field(default_factory=list)
    skipped: list[Key] = field(default_factory=list)  # already done
    busy: list[Key] = field(default_factory=list)  # running in another live process
    failed: list[tuple[Key, str]] = field(default_factory=list)  # key, last traceback line
    damaged: list[tuple[Key, str]] = field(default_factory=list)  # key, the damaged file

    def describe(self) -> str:
        text = (f"{len(self.ran)} ran, {len(self.skipped)} already done, {len(self.busy)} running "
                f"elsewhere, {len(self.failed)} failed, {len(self.damaged)} damaged")
        for key, reason in self.failed:
            text += f"\n  FAILED {'/'.join(key)}: {reason}"
        for key, problem in self.damaged:
            text += f"\n  DAMAGED {'/'.join(key)}: {problem}; {DAMAGED_FIX}"
        return text


def check_conflicts(cells: Sequence[Cell], store: RunStore, replace: bool) -> list[Path]:
    """Refuse (or, with `replace`, set aside) cell folders holding another config's results;
    with `replace`, damaged cell folders are set aside too (without it they are skipped)."""
    conflicts = store.conflicts(c.config for c in cells)
    if replace:
        damaged = store.damaged(c.config for c in cells)
        return [store.set_aside(config.key) for config, _ in [*conflicts, *damaged]]
    if not conflicts:
        return []
    parts = []
    for config, stored in conflicts:
        diff = "\n".join(f"      {d}" for d in store.config_diff(config))
        folder = store.cell_dir(config.key)
        parts.append(f"  {folder} (stored {stored}, planned {config.hash})\n{diff}")
    raise ConfigConflict(
        "these cell folders hold results of a different config and are not reused:\n"
        + "\n".join(parts)
        + "\nrun with --replace to move them aside (<method>.replaced-<hash>), "
        "or use another --runs"
    )


def score_cell(
    config: CellConfig, data: CellData, result: CellResult
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """predictions.jsonl rows and metrics.json of a cell from its executor's raw texts."""
    registry = load_registry()
    test_ids = {r.idx for r in data.test()}
    unknown = sorted(set(result.texts) - test_ids)
    if unknown:
        raise ValueError(f"the executor returned texts for ids not in the test set: {unknown[:5]}")
    predictions: list[dict[str, Any]] = []
    per_task: dict[str, dict[str, Any]] = {}
    for task in config.eval_tasks:
        spec = registry.resolve(task)
        records = data.records("test", task)
        scored = [
            score(Item.from_record(r, spec), result.texts.get(r.idx, "")) for r in records
        ]
        missing = sum(r.idx not in result.texts for r in records)
        per_task[task] = task_metrics(scored, spec, missing).to_json()
        per_task[task].update(extra_metrics(spec, records, scored))
        predictions.extend(s.to_json() for s in scored)
    metrics = {
        "hash": config.hash,
        "tasks": per_task,
        "macro_mean": macro_mean(m["accuracy"] for m in per_task.values()),
        "n": sum(m["n"] for m in per_task.values()),
        "executor_info": dict(result.info),
    }
    return predictions, metrics


def run_cells(
    cells: Sequence[Cell],
    store: RunStore,
    executor: CellExecutor,
    built: Path,
    log: Callable[[str], None] = print,
) -> RunSummary:
    """Run every unfinished cell; a crash is recorded in its cell and the next cell starts."""
    summary = RunSummary()
    for i, cell in enumerate(cells, 1):
        at = f"[{i}/{len(cells)}] {'/'.join(cell.key)}"
        lock = store.lock(cell.key)
        try:
            lock.acquire()
        except LockHeld as exc:
            log(f"{at}: skipped, another process is running it ({exc}); this one goes on "
                "with the other cells")
            summary.busy.append(cell.key)
            continue
        try:
            _run_locked(at, cell, store, executor, built, log, summary)
        finally:
            lock.release()
    return summary


def _run_locked(at: str, cell: Cell, store: RunStore, executor: CellExecutor, built: Path,
                log: Callable[[str], None], summary: RunSummary) -> None:
    """One cell, under its lock (`at` names it in messages)."""
    config = cell.config
    status = store.status_of(config)
    if status == DONE:
        summary.skipped.append(cell.key)
        return
    if status == RUNNING:
        log(f"{at}: running in another live process; skipped")
        summary.busy.append(cell.key)
        return
    if status == DAMAGED:
        problem = store.state(cell.key).problem
        log(f"{at}: DAMAGED, skipped: {problem}; {DAMAGED_FIX}")
        summary.damaged.append((cell.key, problem))
        return
    folder = store.begin(config)
    resumed = f", resuming after {status}" if folder.resumed else ""
    log(f"{at} (attempt {folder.attempt}{resumed})")
    try:
        with store.heartbeat(config):
            data = CellData(built, config)
            predictions, metrics = score_cell(config, data, executor.run(config, data, folder))
        store.finish(config, predictions, metrics)
        summary.ran.append(cell.key)
        log("    done: " + _brief(metrics))
    except KeyboardInterrupt:
        store.interrupt(config)
        raise
    except Exception as exc:  # noqa: BLE001 - one cell's crash must not stop the table
        store.fail(config, traceback.format_exc())
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        summary.failed.append((cell.key, reason))
        log(f"    FAILED ({reason}); traceback in {folder.root / 'error.txt'}")


def _brief(metrics: Mapping[str, Any]) -> str:
    parts = [f"{t} {m['accuracy']:.2f}" for t, m in metrics["tasks"].items()]
    return ", ".join(parts) + (f"; mean {metrics['macro_mean']:.2f}" if len(parts) > 1 else "")
