"""A single run outside a table: `harness train` writes one, `eval` and `diagnose` read any back.

Owns `FolderStore`, `single_cell`, `read_cell`, `executor_info`, `run_options`, `LoadedRun`,
`load_run`, `SplitData`, `evaluation_data`, `open_run`, `evaluate_run` and `write_evaluation`. A run folder is a cell folder
(`harness.store`): config.json, status.json,
metrics.json, predictions.jsonl, checkpoints/ (best/, final/ and the resumable checkpoints), so
`eval` and `diagnose` work the same on `harness train --out DIR` and on any cell of a table.

Reading a run back rebuilds the exact cell: config.json holds the method's result-changing fields,
which are re-applied to the named method, and the rebuilt config must hash to the stored hash.
The model is then rebuilt with the run's own settings (dtype, attention, pixel budget,
max_new_tokens, precision, from the executor fingerprint in config.json), from the weights source
the run recorded (metrics.json; `--executor-opt source=` / `models_dir=` override it), and with
its selected weights (best/ when
the cell keeps the best checkpoint and it exists, else final/; `livr_core.trainer` picks alike).
A run folder's file that cannot be read (bad JSON, a missing field) is a `ConfigError` naming
the file, never a traceback; evaluation results are written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from builders.atomic import atomic_write_json, atomic_write_text
from builders.io import MANIFEST, split_dir
from builders.record import Record
from harness.cells import CellConfig
from harness.config import Overrides, load_table
from harness.errors import ConfigError, MethodError, ProtocolError
from harness.executor import CellData, CellResult
from harness.methods import get_method
from harness.modeling import Prepared, generate_texts, load_weights, prepare
from harness.options import ModelOptions, answer_budget
from harness.plan import Cell, plan_cells
from harness.protocol import ZeroShotProtocol
from harness.runner import score_cell
from harness.samples import generation_options, generation_samples
from harness.store import CHECKPOINTS, CONFIG, METRICS, DamagedFile, Key, RunStore, read_json

SINGLE_TABLE = "train"  # the table name recorded in a `harness train` run's config


class FolderStore(RunStore):
    """A run store whose one cell lives in `folder` (the user's `--out`), not under a table."""

    def __init__(self, folder: Path) -> None:
        super().__init__(Path(folder).parent)
        self.folder = Path(folder)

    def cell_dir(self, key: Key) -> Path:
        return self.folder


def single_cell(
    backbone: str,
    task: str,
    method: str,
    built: Path,
    executor: dict[str, Any],
    overrides: Overrides = Overrides(),
    checkpoint: str | None = None,
) -> Cell:
    """The cell training `method` on `task`: a Table 1 cell (the single-task protocol: one model
    per backbone and task, the paper's defaults; `overrides` may change epochs, lr, limit and
    seed), names and splits checked the same way."""
    table = load_table("1", replace(overrides, backbones=(backbone,), tasks=(task,),
                                    methods=(method,)))
    spec = table.methods[method]
    if checkpoint is not None and spec.trained:
        spec = spec.with_changes(checkpoint=checkpoint)
    table = replace(table, name=SINGLE_TABLE, methods={method: spec})
    return plan_cells(table, built, executor)[0]


def _protocol(stored: dict[str, Any], path: Path) -> ZeroShotProtocol:
    try:
        return ZeroShotProtocol.from_mapping(stored.get("zero_shot") or {}, f"{path} zero_shot")
    except ProtocolError as exc:
        raise ConfigError(str(exc)) from None


def read_cell(run_dir: Path) -> CellConfig:
    """The cell config stored in `run_dir`/config.json, rebuilt exactly (hash checked)."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no {CONFIG})")
    try:
        stored = read_json(path, {"method": dict, "method_name": str, "hash": str})
        changes = dict(stored["method"])
        if changes.get("checkpoint") == "none":  # untrained cells store the rule as "none"
            del changes["checkpoint"]
        method = get_method(stored["method_name"]).with_changes(
            label=stored["method_label"], **changes
        )
        cell = CellConfig(
            table=stored["table"], backbone=stored["backbone"], task=stored["task"],
            method=method, train_tasks=tuple(stored["train_tasks"]),
            eval_tasks=tuple(stored["eval_tasks"]), limit=stored["limit"],
            train_per_task=stored["train_per_task"], seed=stored["seed"], data=stored["data"],
            executor=stored["executor"], protocol=_protocol(stored, path),
        )
    except DamagedFile as exc:
        raise ConfigError(f"{exc}: cannot rebuild the run") from None
    except (MethodError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a cell config of this harness ({type(exc).__name__}: "
                          f"{exc})") from None
    if cell.hash != stored["hash"]:
        raise ConfigError(f"{path} does not rebuild to its own hash {stored['hash']}: it was "
                          "written by another version of the harness")
    return cell


def executor_info(run_dir: Path) -> dict[str, Any]:
    """What the executor recorded about the run (metrics.json's `executor_info`: built folder,
    weights source, device, history...); empty when the run has not finished."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return {}
    try:
        return read_json(path, {"executor_info": dict})["executor_info"]
    except DamagedFile as exc:
        raise ConfigError(f"{exc}; pass --built (and --executor-opt source=...) to say what the "
                          "run used") from None


def stored_built(run_dir: Path) -> Path | None:
    """The built-data folder the run was trained on (from its metrics.json), if recorded."""
    built = executor_info(run_dir).get("built")
    return Path(built) if isinstance(built, str) and built else None


@dataclass
class LoadedRun:
    run_dir: Path
    cell: CellConfig
    prepared: Prepared
    options: ModelOptions
    weights: Path | None  # the loaded best/ or final/; None for an untrained method


def _weights_dir(run_dir: Path, cell: CellConfig) -> Path | None:
    if not cell.method.trained:
        return None
    root = Path(run_dir) / CHECKPOINTS
    best = root / "best"
    chosen = best if cell.checkpoint == "best" and best.is_dir() else root / "final"
    if not chosen.is_dir():
        raise ConfigError(f"{run_dir} holds no trained weights ({chosen} is missing): "
                          "finish its training first (harness train / harness run resumes it)")
    return chosen


def run_options(run_dir: Path, cell: CellConfig, options: ModelOptions) -> ModelOptions:
    """The options a run is read back with (eval, diagnose, export): its recorded weights source
    unless `options` name one, and its own result-changing settings (dtype, attention, pixel
    budget, ...: the executor fingerprint in config.json)."""
    return options.recorded(executor_info(run_dir)).with_run_settings(cell.executor)


def load_run(run_dir: Path, options: ModelOptions) -> LoadedRun:
    """The run's model with its selected weights, built with the run's own settings."""
    run_dir = Path(run_dir)
    cell = read_cell(run_dir)
    name = cell.executor.get("name")
    if name != "livr":
        raise ConfigError(f"{run_dir} was made by the {name!r} executor, which has no model")
    options = answer_budget(run_options(run_dir, cell, options),
                            (*cell.train_tasks, *cell.eval_tasks))
    weights = _weights_dir(run_dir, cell)
    prepared = prepare(cell.backbone, cell.method, options, cell.seed)
    if weights is not None:
        load_weights(prepared, weights)
    return LoadedRun(run_dir, cell, prepared, options, weights)


class SplitData(CellData):
    """A cell's data with `split` in the place of the test split (evaluation on val, say)."""

    def __init__(self, built: Path, cell: CellConfig, split: str) -> None:
        super().__init__(built, cell)
        self.split = split

    def records(self, split: str, task: str) -> list[Record]:
        return super().records(self.split if split == "test" else split, task)


def evaluation_data(cell: CellConfig, built: Path, split: str, limit: int | None) -> SplitData:
    """What a run is evaluated on: `split` of its eval tasks, with its own limit or `limit`;
    checked before any model is loaded."""
    cell = cell if limit is None else replace(cell, limit=limit)
    missing = [split_dir(built, t, split) for t in cell.eval_tasks
               if not (split_dir(built, t, split) / MANIFEST).is_file()]
    if missing:
        raise ConfigError(f"no built {split!r} split at {', '.join(map(str, missing))} "
                          "(pass --built, or build it with build-task)")
    return SplitData(built, cell, split)


def open_run(
    run_dir: Path, options: ModelOptions, split: str = "test", built: Path | None = None,
    limit: int | None = None,
) -> tuple[LoadedRun, SplitData]:
    """A run's model and the data it is evaluated on (`eval`, `diagnose`): `split` of its
    tasks from `built` (default: the folder it was trained on, else built/), checked before the
    model is loaded."""
    built = built or stored_built(run_dir) or Path("built")
    data = evaluation_data(read_cell(run_dir), built, split, limit)
    return load_run(run_dir, options), data


def evaluate_run(
    loaded: LoadedRun, data: SplitData
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """predictions.jsonl rows and metrics of the run's greedy answers on `data`, scored as
    `harness run` scores a cell."""
    samples = generation_samples(data.cell, data)  # a zero-shot run: asked as its protocol says
    options = generation_options(data.cell, loaded.options)
    texts = generate_texts(loaded.prepared, samples, options)
    predictions, metrics = score_cell(data.cell, data, CellResult(texts))
    metrics["split"] = data.split
    return predictions, metrics


def write_evaluation(
    out: Path, predictions: Sequence[dict[str, Any]], metrics: dict[str, Any]
) -> Path:
    """`out`/metrics.json and predictions.jsonl of `harness eval`, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "predictions.jsonl", "".join(
        json.dumps(p, sort_keys=True, ensure_ascii=False) + "\n" for p in predictions))
    atomic_write_json(out / "metrics.json", metrics)
    return out
