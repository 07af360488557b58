"""Parquet I/O of splits: `<out>/<task>/<split>/data-XXXXX-of-YYYYY.parquet` + `manifest.json`.

Writing is atomic at the split level: shards and manifest go to a hidden temporary folder next to
the target, which is renamed into place only when complete. An interrupted build therefore leaves
no folder that looks like a finished split, and an existing split is replaced only with
`overwrite=True` (the old one is moved aside first and deleted after the swap).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from builders.record import ARROW_SCHEMA, COLUMNS, Record

MANIFEST = "manifest.json"


class SplitExistsError(FileExistsError):
    pass


class SplitNotFoundError(FileNotFoundError):
    pass


def split_dir(out: str | os.PathLike, task: str, split: str) -> Path:
    return Path(out) / task / split


def shard_name(i: int, total: int) -> str:
    return f"data-{i:05d}-of-{total:05d}.parquet"


def _write_table(rows: list[dict[str, Any]], path: Path) -> None:
    table = pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)
    # No statistics timestamps exist in Parquet; fixed writer options keep bytes reproducible.
    pq.write_table(table, path, compression="zstd", write_statistics=False, use_dictionary=False)


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


class SplitWriter:
    """Stream records into shards inside a temporary folder; `commit` publishes the split."""

    def __init__(self, target: Path, shard_rows: int, overwrite: bool = False) -> None:
        self.target = Path(target)
        if self.target.exists() and not overwrite:
            raise SplitExistsError(
                f"{self.target} already exists; pass --overwrite to replace it "
                f"(nothing was written)"
            )
        self.overwrite = overwrite
        self.shard_rows = shard_rows
        self.tmp = self.target.parent / f".{self.target.name}.tmp-{os.getpid()}"
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
        self._buffer: list[dict[str, Any]] = []
        self._parts: list[Path] = []

    def add(self, record: Record) -> None:
        self._buffer.append(record.to_row())
        if len(self._buffer) >= self.shard_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        part = self.tmp / f"part-{len(self._parts):05d}.parquet"
        _write_table(self._buffer, part)
        self._parts.append(part)
        self._buffer = []

    def add_side_file(self, name: str, records: Iterable[Record]) -> None:
        """Another Parquet file of records published with the split (e.g. dedup's
        `removed-*.parquet`); readers of the split's data glob `data-*.parquet` only."""
        if name.startswith("data-") or not name.endswith(".parquet"):
            raise ValueError(f"side file {name!r} must end in .parquet and not start with data-")
        _write_table([r.to_row() for r in records], self.tmp / name)

    def commit(self, manifest: dict[str, Any]) -> Path:
        self._flush()
        total = len(self._parts)
        names = []
        for i, part in enumerate(self._parts):
            name = shard_name(i, total)
            part.rename(self.tmp / name)
            names.append(name)
        manifest = {**manifest, "shards": names}
        write_json(self.tmp / MANIFEST, manifest)
        backup = None
        if self.target.exists():
            backup = self.target.parent / f".{self.target.name}.old-{os.getpid()}"
            self.target.rename(backup)
        self.tmp.rename(self.target)
        if backup is not None:
            shutil.rmtree(backup)
        return self.target

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    m = p / MANIFEST if p.is_dir() else p
    if not m.is_file():
        raise SplitNotFoundError(f"no {MANIFEST} in {p}: not a finished split (build it with build-task)")
    return json.loads(m.read_text(encoding="utf-8"))


def iter_records(path: str | os.PathLike, pattern: str = "data-*.parquet") -> Iterator[Record]:
    """Records of a finished split folder, in idx order of the shards."""
    p = Path(path)
    read_manifest(p)
    for shard in sorted(p.glob(pattern)):
        for row in pq.read_table(shard).to_pylist():
            yield Record.from_row(row)


def read_split(path: str | os.PathLike) -> list[Record]:
    return list(iter_records(path))


def write_records(records: Iterable[Record], target: Path, manifest: dict[str, Any],
                  shard_rows: int = 500, overwrite: bool = False) -> Path:
    """Write a whole split at once (used for pass-through splits such as BLINK's)."""
    writer = SplitWriter(target, shard_rows, overwrite)
    try:
        for r in records:
            writer.add(r)
        return writer.commit(manifest)
    except BaseException:
        writer.abort()
        raise


assert COLUMNS == tuple(ARROW_SCHEMA.names), "record columns and Arrow schema disagree"
