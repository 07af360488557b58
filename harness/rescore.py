"""Re-reading saved raw outputs with the current parser: new metrics without running a model.

Owns `RescoreSummary`, `scored_folders`, `rescore_folder`, `rescore_tree` and `load_judge`. A
scored folder holds predictions.jsonl (one row per test example: idx, task, raw, parsed, gold,
correct, and since parser version 2 the item's letters and option texts) and metrics.json: a
cell of a run store, a `harness train` run folder, or its `eval/<split>/` results.

Rescoring parses every row's raw text again with `harness.parsing` as it is now (and an optional
judge), recomputes each task's metrics, and rewrites both files atomically. Everything else in
metrics.json is kept: the config hash, executor_info, the split, each task's missing-output
count. Each task's metrics then name the parser version that scored them; `rescored_from`
lists the versions before (null: not recorded). Rows written before version 2 carry no option
texts; they take their task's letters and texts from tasks.toml, which are the ones BLINK and
our builders use for every row of these tasks.

A folder whose cell is running in another process is skipped and named; so is one whose
predictions.jsonl is unreadable, with the line and the fix. Rescoring the same folder twice
gives byte-identical files.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builders.atomic import atomic_write_json, atomic_write_text
from builders.registry import RegistryError, TaskSpec, load_registry
from harness.errors import ConfigError
from harness.items import Item, Scored, macro_mean
from harness.metrics import TaskMetrics, score, task_metrics
from harness.parsing import PARSER_VERSION, Judge
from harness.store import METRICS, PREDICTIONS, RUNNING, STATUS


class RescoreError(ConfigError):
    """A scored folder cannot be read (bad JSON, a row missing a field, an unknown task)."""


@dataclass
class RescoreSummary:
    rescored: list[Path] = field(default_factory=list)
    changed: int = 0  # rows whose parsed answer changed
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # folder, why

    def describe(self) -> str:
        text = (f"{len(self.rescored)} folder(s) rescored with parser version {PARSER_VERSION}, "
                f"{self.changed} answer(s) read differently, {len(self.skipped)} skipped")
        return text + "".join(f"\n  SKIPPED {path}: {why}" for path, why in self.skipped)


def scored_folders(root: Path) -> Iterator[Path]:
    """Every folder under `root` (itself included) holding predictions.jsonl and metrics.json,
    in sorted order; checkpoint folders are not searched."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "checkpoints")
        if PREDICTIONS in files and METRICS in files:
            yield Path(folder)


def _rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RescoreError(f"{path}:{n} is not valid JSON ({exc.msg}); restore the file "
                               "or rerun the cell") from None
        missing = [k for k in ("idx", "task", "raw", "gold") if k not in row]
        if missing:
            raise RescoreError(f"{path}:{n} lacks {', '.join(missing)}; it was not written by "
                               "harness run / train / eval")
        rows.append(row)
    return rows


def _item(row: dict[str, Any], spec: TaskSpec) -> Item:
    # Rows before parser version 2 carry no letters or option texts: the task's own apply.
    letters = row.get("letters") or (spec.letters if spec.answer_type == "mcq" else "")
    choices = tuple(row["choices"]) if row.get("choices") else spec.choices
    return Item(idx=row["idx"], task=row["task"], gold=row["gold"],
                answer_type=spec.answer_type, letters=letters, choices=choices)


def _is_running(folder: Path) -> bool:
    path = folder / STATUS
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("status") == RUNNING
    except json.JSONDecodeError:
        return False


def rescore_folder(
    folder: Path, judge: Judge | None = None, judge_name: str | None = None
) -> int:
    """Re-parse one scored folder and rewrite its predictions and metrics; returns the number
    of rows whose parsed answer changed."""
    folder = Path(folder)
    metrics_path, predictions_path = folder / METRICS, folder / PREDICTIONS
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RescoreError(f"{metrics_path} is not valid JSON ({exc.msg})") from None
    rows = _rows(predictions_path)
    registry = load_registry()
    old_tasks: dict[str, Any] = metrics.get("tasks", {})
    order = list(dict.fromkeys([*old_tasks, *(r["task"] for r in rows)]))
    by_task: dict[str, list[Scored]] = {t: [] for t in order}
    changed = 0
    new_rows = []
    for row in rows:
        try:
            spec = registry.resolve(row["task"])
        except RegistryError:
            raise RescoreError(f"{predictions_path}: unknown task {row['task']!r} "
                               "(not in tasks.toml)") from None
        scored = score(_item(row, spec), row["raw"], judge)
        changed += scored.parsed != row.get("parsed")
        by_task[row["task"]].append(scored)
        new_rows.append(scored.to_json())
    tasks: dict[str, Any] = {}
    for task in order:
        old = old_tasks.get(task, {})
        fresh: TaskMetrics = task_metrics(by_task[task], registry.resolve(task),
                                          missing=int(old.get("missing", 0)), judge=judge_name)
        tasks[task] = fresh.to_json()
    before = sorted({m.get("parser_version") for m in old_tasks.values()},
                    key=lambda v: (v is not None, v or 0))
    metrics.update({
        "tasks": tasks,
        "macro_mean": macro_mean(m["accuracy"] for m in tasks.values()),
        "n": sum(m["n"] for m in tasks.values()),
        "rescored_from": before,
    })
    atomic_write_text(predictions_path, "".join(
        json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in new_rows))
    atomic_write_json(metrics_path, metrics)
    return changed


def load_judge(target: str) -> Judge:
    """The judge function named "module:function" (an installed module, imported by name)."""
    module, _, name = target.partition(":")
    if not module or not name:
        raise ConfigError(f"--judge takes MODULE:FUNCTION, got {target!r}")
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"--judge: no module {module!r} is importable")
    judge = getattr(importlib.import_module(module), name, None)
    if not callable(judge):
        raise ConfigError(f"--judge: {module} has no function {name!r}")
    return judge


def rescore_tree(
    roots: Iterable[Path], judge: Judge | None = None, judge_name: str | None = None,
    log: Any = print,
) -> RescoreSummary:
    """Rescore every scored folder under `roots`; a running or unreadable one is skipped."""
    summary = RescoreSummary()
    for root in roots:
        for folder in scored_folders(Path(root)):
            if _is_running(folder):
                summary.skipped.append((folder, "its cell is running; rescore it when done"))
                continue
            try:
                changed = rescore_folder(folder, judge, judge_name)
            except RescoreError as exc:
                summary.skipped.append((folder, str(exc)))
                continue
            summary.rescored.append(folder)
            summary.changed += changed
            log(f"rescored {folder}: {changed} answer(s) read differently")
    return summary
