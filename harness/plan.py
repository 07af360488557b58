"""From a table config and a built-data folder to the list of cells to run, with their cost.

Owns `Cell`, `CellCost`, `MissingSplitsError`, `plan_cells`, `parse_shard`, `shard_cells`,
`format_plan` and `format_missing`. Planning reads the split manifests and hashes the shard files
(never decodes the Parquet data), so `--dry-run` stays fast and a missing or damaged split is
reported, with every other one and the commands that make them, before anything runs.

A dry run plans before the data exists (`missing_ok`): a cell whose splits are not built (or
do not match their manifests) is still planned, costed at the sizes tasks.toml gives its splits
(its limits applied), and carries the splits it lacks; `format_missing` prints them with the
exact `build-task` commands (raw data at `/data/<source>`, `builders.commands`) and the `dedup`
runs their train/val splits need once built.

Every split a plan needs is checked whole against its manifest (`builders.io.split_digest`: every
shard present, of its recorded size and sha256, nothing extra), and the cell hash takes the digest
of the shards' content, so a changed, damaged or swapped shard is either refused before anything
runs or makes a different cell, never a stale result under the old hash.

Sharding: `--shard i/n` (0 <= i < n) partitions ALL cells of the plan, finished or not, so every
machine sharing the run store computes the same partition whatever the store holds. Cells are
dealt greedily by cost (largest first, each to the least-loaded shard, ties to the lower index),
which balances GPU time better than round-robin and is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from builders.commands import SOURCE_ROOT, build_command, dedup_command
from builders.io import (
    MANIFEST,
    SplitDamagedError,
    SplitNotFoundError,
    split_digest,
    split_dir,
    verify_split,
)
from builders.registry import SPLITS, load_registry
from harness.cells import CellConfig
from harness.config import TableConfig
from harness.errors import ConfigError


class MissingSplitsError(ConfigError):
    """Built splits that the plan needs are not on disk."""


@dataclass(frozen=True)
class CellCost:
    epochs: int
    train_examples: int
    val_examples: int  # evaluated after every epoch when the best checkpoint is kept
    test_examples: int

    @property
    def train_passes(self) -> int:
        """Training examples seen, over all epochs."""
        return self.epochs * self.train_examples

    @property
    def eval_examples(self) -> int:
        return self.test_examples + self.epochs * self.val_examples

    @property
    def weight(self) -> int:
        return self.train_passes + self.eval_examples


@dataclass(frozen=True)
class Cell:
    config: CellConfig
    cost: CellCost
    # (task, split) this cell needs that are not built (a dry run's plan): its cost is then the
    # tasks.toml sizes' and its config has no data digests yet, so no hash to look up
    missing: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.config.key

    @property
    def hash(self) -> str:
        return self.config.hash


@dataclass(frozen=True)
class _SplitInfo:
    n: int
    digest: str


def _split_info(built: Path, task: str, split: str) -> _SplitInfo | None:
    """Size and content digest of a split, checked whole; None when it is not built. A damaged
    split raises `SplitDamagedError`."""
    path = split_dir(built, task, split)
    try:
        manifest = verify_split(path)
    except SplitNotFoundError:
        return None
    return _SplitInfo(int(manifest["n"]), split_digest(path))


def _needed_splits(config: CellConfig) -> list[tuple[str, str]]:
    needed = [(t, "test") for t in config.eval_tasks]
    needed += [(t, "train") for t in config.train_tasks]
    if config.checkpoint == "best":
        needed += [(t, "val") for t in config.train_tasks]
    return needed


def _cap(n: int, *caps: int | None) -> int:
    return min([n, *(c for c in caps if c is not None)])


def _cost(config: CellConfig, infos: dict[tuple[str, str], _SplitInfo]) -> CellCost:
    """The cell's cost from its splits' sizes (tasks.toml's where a split is not built)."""
    registry = load_registry()

    def n(task: str, split: str) -> int:
        info = infos.get((task, split))
        return info.n if info is not None else registry.resolve(task).size(split)

    def size(split: str, tasks: Sequence[str], *caps: int | None) -> int:
        return sum(_cap(n(t, split), config.limit, *caps) for t in tasks)

    return CellCost(
        epochs=config.method.total_epochs,
        train_examples=size("train", config.train_tasks, config.train_per_task),
        val_examples=size("val", config.train_tasks) if config.checkpoint == "best" else 0,
        test_examples=size("test", config.eval_tasks),
    )


def plan_cells(
    table: TableConfig, built: Path, executor: dict[str, Any] | None = None,
    missing_ok: bool = False,
) -> list[Cell]:
    """Every cell of `table`, resolved against the splits under `built`.

    `executor` is the executor's name and fingerprint; it enters every cell's hash. A missing or
    damaged split raises `MissingSplitsError` naming all of them, unless `missing_ok` (a dry
    run): the cells that need one are then planned with `Cell.missing` set.
    """
    built = Path(built)
    infos: dict[tuple[str, str], _SplitInfo] = {}
    missing: set[tuple[str, str]] = set()
    damaged: dict[tuple[str, str], str] = {}
    cells: list[Cell] = []
    for backbone in table.backbones:
        for task in table.cell_tasks():
            for method in table.methods.values():
                config = CellConfig(
                    table=table.name, backbone=backbone, task=task, method=method,
                    train_tasks=table.train_tasks(task) if method.trained else (),
                    eval_tasks=table.eval_tasks(task),
                    limit=table.limit, train_per_task=table.train_per_task, seed=table.seed,
                    executor=dict(executor or {}),
                    **({} if method.trained else {"protocol": table.zero_shot}),
                )
                needed = _needed_splits(config)
                for key in needed:
                    if key not in infos and key not in missing and key not in damaged:
                        try:
                            info = _split_info(built, *key)
                        except SplitDamagedError as exc:
                            damaged[key] = str(exc)
                            continue
                        if info is None:
                            missing.add(key)
                        else:
                            infos[key] = info
                lacking = tuple(k for k in needed if k in missing or k in damaged)
                if lacking:
                    if missing_ok:
                        cells.append(Cell(config, _cost(config, infos), lacking))
                    continue  # else reported below, with every other missing or damaged split
                data = {f"{t}/{s}": infos[(t, s)].digest for t, s in needed}
                cells.append(Cell(replace(config, data=data), _cost(config, infos)))
    if missing_ok:
        return cells
    if damaged:
        raise MissingSplitsError(
            f"table {table.name!r} needs built splits that do not match their manifests "
            f"(nothing was run):\n" + "\n".join(damaged[k] for k in sorted(damaged)))
    if missing:
        lines = "\n".join(f"  {split_dir(built, t, s)}/{MANIFEST}" for t, s in sorted(missing))
        raise MissingSplitsError(
            f"table {table.name!r} needs built splits that are missing under {built}:\n{lines}\n"
            + format_missing(missing, built) + "\n(`harness run --dry-run` shows the plan)")
    return cells


def format_missing(missing: Iterable[tuple[str, str]], built: Path) -> str:
    """The commands that make the `missing` (task, split)s under `built`: a `build-task` per
    split, then a `dedup` per test set that the new train/val splits must be cleaned against
    (it reads their test splits too, so it runs after every build)."""
    from dedup.config import load_config  # tasks.toml [dedup]: which tasks need raw images

    registry = load_registry()
    order = list(registry.tasks)
    missing = sorted(set(missing), key=lambda m: (order.index(m[0]), SPLITS.index(m[1])))
    head = (f"{len(missing)} split(s) to build under {built} (raw datasets at "
            f"{SOURCE_ROOT}/<source>: `build-task --help` shows each layout; a folder that is "
            "there but does not match its manifest is rebuilt with --overwrite):")
    lines = [head]
    lines += [f"  {build_command(registry.resolve(t), s, built, split_dir(built, t, s).exists())}"
              for t, s in missing]
    against: dict[str, dict[str, None]] = {}  # test set -> its tasks, in registry order
    for task, split in missing:
        spec = registry.resolve(task)
        if split != "test" and spec.dedup_against != "none":
            against.setdefault(spec.dedup_against, {})[spec.name] = None
    if against:
        raw = set(load_config(registry).raw_tasks)
        lines.append("then remove their near-duplicates of the test images (paper App. A):")
        lines += [f"  {dedup_command(a, built, list(tasks), bool(raw & set(tasks)))}"
                  for a, tasks in sorted(against.items())]
    return "\n".join(lines)


def parse_shard(text: str) -> tuple[int, int]:
    """Parse `i/n` into (i, n) with 0 <= i < n."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise ConfigError(f"--shard {text}: need 0 <= i < n (shards are numbered from 0)")
    return i, n


def shard_cells(cells: Sequence[Cell], index: int, count: int) -> list[Cell]:
    """The cells of shard `index` of `count`, in plan order (see the module docstring)."""
    loads = [0] * count
    owner: dict[tuple[str, str, str, str], int] = {}
    for cell in sorted(cells, key=lambda c: (-c.cost.weight, c.key)):
        target = min(range(count), key=lambda s: (loads[s], s))
        owner[cell.key] = target
        loads[target] += cell.cost.weight
    return [c for c in cells if owner[c.key] == index]


def format_plan(cells: Sequence[Cell], statuses: dict[tuple[str, str, str, str], str]) -> str:
    """The dry-run table: one line per cell with its status and cost, then totals."""
    head = ("backbone", "task", "method", "status", "epochs", "train ex", "train passes",
            "eval ex")
    rows = [
        (c.config.backbone, c.config.task, c.config.method.name, statuses.get(c.key, "new"),
         str(c.cost.epochs), str(c.cost.train_examples), str(c.cost.train_passes),
         str(c.cost.eval_examples))
        for c in cells
    ]
    todo = [c for c in cells if statuses.get(c.key, "new") != "done"]
    for label, group in (("total", cells), ("to run", todo)):
        rows.append((
            f"{label} ({len(group)} cells)", "", "", "", str(sum(c.cost.epochs for c in group)),
            str(sum(c.cost.train_examples for c in group)),
            str(sum(c.cost.train_passes for c in group)),
            str(sum(c.cost.eval_examples for c in group)),
        ))
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(
            v.ljust(w) if i < 4 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))
        ).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), sep, *map(line, rows[: len(cells)]), sep,
                      *map(line, rows[len(cells):])])
