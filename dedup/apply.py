"""Writing the filtered train/val splits: kept rows as the data shards, removed rows beside them.

A split is rewritten through `builders.io.SplitWriter` (temporary folder, fsync, a recoverable
replace under the split's lock): the kept rows become `data-*.parquet`, every row ever removed
(earlier runs' and this run's) goes to the side files `.livr/removed-*.parquet` (where data
loaders do not look), and the manifest gets `n`, `records` and `answer_counts` of the kept rows
plus a `dedup` section. Nothing is lost: the union of both shard sets is the split as built. A
split is only rewritten when something changes (new removals, or no `dedup` section for this
configuration yet), so a re-run on filtered data leaves every byte in place. The records given
here were read whole and checked (`dedup.catalog.load_task`); the previously removed rows are
checked the same way before anything is written. The test split is never opened for writing.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builders.io import SplitWriter, iter_records, read_manifest
from builders.record import Record
from dedup.catalog import TaskData
from dedup.pairs import Removal

REMOVED_PATTERN = "removed-*.parquet"


def removed_shard_name(i: int, total: int) -> str:
    return f"removed-{i:05d}-of-{total:05d}.parquet"


@dataclass
class SplitOutcome:
    split: str
    examined: int
    removed_now: list[Removal]
    removed_total: int
    kept: int
    written: bool
    removed_rows: list[Record] = field(default_factory=list)  # every removed row, all runs
    removed_rules: dict[str, str] = field(default_factory=dict)  # idx -> rule, all runs


def read_removed(split_path: Path) -> list[Record]:
    """Rows earlier runs removed from this split (its `removed-*.parquet` side files, checked
    against the manifest)."""
    return list(iter_records(split_path, REMOVED_PATTERN))


def _dedup_section(previous: dict[str, Any] | None, against: str, run_info: dict[str, Any],
                   new: list[Removal], shards: list[str]) -> dict[str, Any]:
    removed = list((previous or {}).get("removed", [])) + [r.entry() for r in new]
    return {
        "against": against,
        **run_info,
        "n_removed": len(removed),
        "removed": removed,
        "removed_shards": shards,
    }


def apply_split(path: Path, records: list[Record], new: list[Removal], against: str,
                run_info: dict[str, Any], shard_rows: int) -> SplitOutcome:
    """Move the `new` removals of one split out of its data shards (atomically)."""
    manifest = read_manifest(path)
    previous = manifest.get("dedup")
    old_removed = read_removed(path)
    gone = {r.idx for r in new}
    kept = [r for r in records if r.idx not in gone]
    removed_rows = old_removed + [r for r in records if r.idx in gone]
    rules = {e["idx"]: e["rule"] for e in (previous or {}).get("removed", [])}
    rules.update({r.idx: r.rule for r in new})
    same_run = previous is not None and previous.get("against") == against and all(
        previous.get(k) == v for k, v in run_info.items())
    if not new and same_run:
        return SplitOutcome(path.name, len(records), [], len(old_removed), len(kept), False,
                            old_removed, rules)
    n_shards = -(-len(removed_rows) // shard_rows) if removed_rows else 0
    names = [removed_shard_name(i, n_shards) for i in range(n_shards)]
    out = copy.deepcopy(manifest)  # n, records, shards and files: the writer's own account
    out["answer_counts"] = dict(sorted(Counter(r.answer for r in kept).items()))
    out["dedup"] = _dedup_section(previous, against, run_info, new, names)
    writer = SplitWriter(path, shard_rows, overwrite=True)
    try:
        for r in kept:
            writer.add(r)
        for i, name in enumerate(names):
            chunk = removed_rows[i * shard_rows:(i + 1) * shard_rows]
            writer.add_side_file(name, chunk)
    except BaseException:
        writer.abort()
        raise
    writer.commit(out)
    return SplitOutcome(path.name, len(records), new, len(removed_rows), len(kept), True,
                        removed_rows, rules)


def apply_task(task: TaskData, removals: dict[tuple[str, str], Removal], against: str,
               run_info: dict[str, Any], shard_rows: int) -> dict[str, SplitOutcome]:
    out = {}
    for split, records in task.splits.items():
        new = [removals[(split, r.idx)] for r in records if (split, r.idx) in removals]
        out[split] = apply_split(task.dirs[split], records, new, against, run_info, shard_rows)
    return out
