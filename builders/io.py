"""Built splits on disk: the layout, the one writer, and readers that take a split whole or not at all.

Layout of a split folder `<out>/<task>/<split>/`:

    data-00000-of-00002.parquet ...    the kept rows: the ONLY files data loaders see
    .livr/manifest.json                what was built, every shard's size, row count and sha256
    .livr/dataset_info.json            the same as Hugging Face `dataset_info` (for other tools)
    .livr/<side file>.parquet          rows stored with the split but not part of it (dedup's
                                       `removed-*.parquet`, helper images), checksummed too

`.livr/` is hidden on purpose: `datasets` (3.x and 5.x), pyarrow datasets and pandas skip names
starting with "." or "_", so `load_dataset("parquet", data_dir=...)` and `pd.read_parquet(dir)`
give exactly the kept rows. `MANIFEST` is that relative path, so `split_dir(...) / MANIFEST` is
the manifest wherever it is used.

Writing (`SplitWriter`): one writer per split at a time (an exclusive `FileLock`
`<task>/.<split>.lock`); shards and manifest go to a temporary sibling named with host and pid,
are fsynced, and `builders.atomic.replace_dir` publishes them (an existing split only with
`overwrite=True`; a kill between the renames is repaired by `recover_dir`, which every writer and
reader calls first). A second writer without `overwrite` is refused at once; with it, it waits.

Reading (`verify_split`, `iter_records`, `read_split`, `split_digest`): every reader checks the
split against its manifest first: the data files present are exactly the manifest's shards (none
missing, none extra), each has the recorded size, the row counts add up to `n`; while reading, each
shard's sha256 and the sequence of record ids are checked too. Anything else raises
`SplitDamagedError` naming the split, what is wrong and the command that fixes it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Self

import pyarrow as pa
import pyarrow.parquet as pq

from builders.atomic import FileLock, LockHeld, dumps_json, recover_dir, replace_dir, temp_sibling
from builders.manifest import dataset_info, record_entry
from builders.record import ARROW_SCHEMA, COLUMNS, Record

log = logging.getLogger(__name__)

META_DIR = ".livr"
MANIFEST = f"{META_DIR}/manifest.json"  # relative to the split folder
DATASET_INFO = f"{META_DIR}/dataset_info.json"
LEGACY_MANIFEST = "manifest.json"  # beside the shards: written by versions before `.livr/`
DATA_PATTERN = "data-*.parquet"
# What `datasets` and pyarrow datasets skip when they list a folder: a name starting with these.
HIDDEN_PREFIXES = (".", "_")
# A writer with `overwrite=True` waits this long for another writer of the same split (no limit:
# the other build finishes or dies, and the kernel releases a dead holder's lock at once).
OVERWRITE_WAIT_S = float("inf")
_HASH_CHUNK = 1 << 20


class SplitExistsError(FileExistsError):
    """The split is already built (or being built) and `overwrite` was not given."""


class SplitBusyError(SplitExistsError):
    """Another live process is writing this split now."""


class SplitNotFoundError(FileNotFoundError):
    """No finished split at this folder."""


class SplitDamagedError(ValueError):
    """A split's files do not match its manifest (missing, extra, truncated or foreign shard)."""


class OutputError(OSError):
    """The output folder cannot be written (it is a file, or read-only)."""


@dataclass(frozen=True)
class FileInfo:
    """One file of a split as its manifest records it."""

    num_bytes: int
    num_rows: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"num_bytes": self.num_bytes, "num_rows": self.num_rows, "sha256": self.sha256}


def split_dir(out: str | os.PathLike, task: str, split: str) -> Path:
    return Path(out) / task / split


def shard_name(i: int, total: int) -> str:
    return f"data-{i:05d}-of-{total:05d}.parquet"


def lock_path(split_path: str | os.PathLike) -> Path:
    p = Path(split_path)
    return p.parent / f".{p.name}.lock"


def rebuild_hint(split_path: str | os.PathLike) -> str:
    """The command that rebuilds the split at `split_path` (`<out>/<task>/<split>`)."""
    p = Path(split_path)
    return (f"build-task {p.parent.name} --split {p.name} --out {p.parent.parent} --overwrite "
            f"(and re-run dedup if the split had been de-duplicated)")


def _damaged(split_path: Path, *problems: str) -> SplitDamagedError:
    listed = "\n".join(f"  - {p}" for p in problems)
    return SplitDamagedError(
        f"split {split_path} does not match its manifest ({split_path / MANIFEST}); it is not "
        f"read as partial data:\n{listed}\nFix: restore the folder from a copy, or rebuild it: "
        f"{rebuild_hint(split_path)}")


def _hidden(name: str) -> bool:
    return name.startswith(HIDDEN_PREFIXES)


def _write_table(rows: list[dict[str, Any]], path: Path) -> int:
    table = pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)
    # No statistics timestamps exist in Parquet; fixed writer options keep bytes reproducible.
    pq.write_table(table, path, compression="zstd", write_statistics=False, use_dictionary=False)
    return table.num_rows


def _sha256(handle: BinaryIO) -> str:
    h = hashlib.sha256()
    while chunk := handle.read(_HASH_CHUNK):
        h.update(chunk)
    return h.hexdigest()


def _file_info(path: Path, rows: int) -> FileInfo:
    with open(path, "rb") as handle:
        return FileInfo(path.stat().st_size, rows, _sha256(handle))


def write_json(path: Path, obj: Any) -> None:
    """Plain JSON in our style, for files inside a temporary folder that is published whole
    (anything published on its own goes through `builders.atomic.atomic_write_json`)."""
    path.write_text(dumps_json(obj), encoding="utf-8")


# ---- one writer per split ----------------------------------------------------------------------

class _SplitLock:
    """The exclusive lock of one split, re-entrant within this process: dedup holds a task's
    split locks while it reads, decides and rewrites, and its `SplitWriter`s share them."""

    _held: ClassVar[dict[str, list]] = {}  # lock path -> [FileLock, depth]

    def __init__(self, split_path: Path, what: str, wait: bool) -> None:
        self.path = lock_path(split_path)
        self.split_path = split_path
        self.key = os.path.abspath(self.path)
        self.what, self.wait = what, wait
        self._acquired = False

    def acquire(self) -> None:
        entry = self._held.get(self.key)
        if entry is not None:
            entry[1] += 1
            self._acquired = True
            return
        _ensure_writable(self.split_path.parent)
        lock = FileLock(self.path, self.what)
        try:
            try:
                lock.acquire()
            except LockHeld as exc:
                if not self.wait:
                    raise SplitBusyError(
                        f"{self.split_path} is being written by another process ({exc}); "
                        f"nothing was written. Wait for it, or pass --overwrite to wait for it "
                        f"and then replace what it wrote") from None
                log.warning("waiting for the other writer of %s to finish (%s)",
                            self.split_path, exc)
                lock = FileLock(self.path, self.what, wait=OVERWRITE_WAIT_S)
                lock.acquire()
        except PermissionError as exc:
            raise OutputError(f"cannot write in {self.split_path.parent}: {exc}; choose a "
                              f"writable --out") from exc
        self._held[self.key] = [lock, 1]
        self._acquired = True

    def release(self) -> None:
        if not self._acquired:
            return
        self._acquired = False
        entry = self._held[self.key]
        entry[1] -= 1
        if entry[1] == 0:
            del self._held[self.key]
            entry[0].release()

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def split_lock(split_path: str | os.PathLike, what: str, wait: bool = False) -> _SplitLock:
    """The split's exclusive lock as a context manager (`wait=False`: refuse when another
    process holds it, with `SplitBusyError`)."""
    return _SplitLock(Path(split_path), what, wait)


def _ensure_writable(folder: Path) -> None:
    """Create `folder` (with parents) or say clearly why it cannot be: an ancestor that is a
    file, or a read-only place."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"cannot write under {folder}: {probe} is a file, not a folder; "
                          f"choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {folder}: {exc.strerror or exc}; choose a writable "
                          f"--out") from exc


class SplitWriter:
    """Stream records into shards inside a temporary folder; `commit` publishes the split.

    The split's lock is held from construction to `commit` / `abort`. `n`, `records`, `shards`,
    `files` and `side_files` of the manifest are the writer's own account of what it wrote."""

    def __init__(self, target: Path, shard_rows: int, overwrite: bool = False) -> None:
        self.target = Path(target)
        self.overwrite = overwrite
        self.shard_rows = shard_rows
        self._lock = split_lock(self.target, f"writing {self.target}", wait=overwrite)
        self._lock.acquire()
        try:
            recover_dir(self.target)
            if self.target.exists() and not overwrite:
                raise SplitExistsError(
                    f"{self.target} already exists; pass --overwrite to replace it "
                    f"(nothing was written)")
            self.tmp = temp_sibling(self.target, "tmp")
            if self.tmp.exists():
                shutil.rmtree(self.tmp)
            (self.tmp / META_DIR).mkdir(parents=True)
        except OSError as exc:
            self._lock.release()
            if isinstance(exc, (SplitExistsError, OutputError)):
                raise
            raise OutputError(f"cannot write {self.target}: {exc}; choose a writable --out") \
                from exc
        except BaseException:
            self._lock.release()
            raise
        self._buffer: list[dict[str, Any]] = []
        self._parts: list[tuple[Path, int]] = []
        self._entries: list[dict[str, Any]] = []
        self._side: dict[str, FileInfo] = {}

    def __len__(self) -> int:
        """Rows added so far."""
        return len(self._entries)

    @property
    def entries(self) -> list[dict[str, Any]]:
        """The manifest `records` entries (idx, answer, image sha256s) of the rows added so far."""
        return list(self._entries)

    def add(self, record: Record, entry: dict[str, Any] | None = None) -> None:
        """Add one row; `entry` adds fields to its manifest entry (e.g. a helper image's hash)."""
        self._buffer.append(record.to_row())
        self._entries.append({**record_entry(record), **(entry or {})})
        if len(self._buffer) >= self.shard_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        part = self.tmp / f"part-{len(self._parts):05d}.parquet"
        self._parts.append((part, _write_table(self._buffer, part)))
        self._buffer = []

    def add_side_file(self, name: str, records: Iterable[Record]) -> None:
        """Another Parquet file of records published with the split but not part of it (e.g.
        dedup's `removed-*.parquet`, helper images): stored under `.livr/`, where data loaders do
        not look, checksummed in the manifest; read it back with `side_file` / `iter_records`."""
        if name.startswith("data-") or not name.endswith(".parquet") or "/" in name \
                or _hidden(name):
            raise ValueError(f"side file {name!r} must be a plain name ending in .parquet, not "
                             f"starting with data-, '.' or '_'")
        path = self.tmp / META_DIR / name
        self._side[name] = _file_info(path, _write_table([r.to_row() for r in records], path))

    def commit(self, manifest: dict[str, Any]) -> Path:
        try:
            self._flush()
            total = len(self._parts)
            files = {}
            for i, (part, rows) in enumerate(self._parts):
                name = shard_name(i, total)
                part.rename(self.tmp / name)
                files[name] = _file_info(self.tmp / name, rows).to_json()
            manifest = {
                **manifest, "n": len(self._entries), "records": self._entries,
                "shards": list(files), "files": files,
                "side_files": {k: v.to_json() for k, v in sorted(self._side.items())},
            }
            write_json(self.tmp / MANIFEST, manifest)
            write_json(self.tmp / DATASET_INFO, dataset_info(manifest))
            replace_dir(self.tmp, self.target)  # fsyncs every file first
        except BaseException:
            self.abort()
            raise
        self._lock.release()
        return self.target

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self._lock.release()


def write_records(records: Iterable[Record], target: Path, manifest: dict[str, Any],
                  shard_rows: int = 500, overwrite: bool = False) -> Path:
    """Write a whole split at once (used for pass-through splits such as BLINK's)."""
    writer = SplitWriter(target, shard_rows, overwrite)
    try:
        for r in records:
            writer.add(r)
    except BaseException:
        writer.abort()
        raise
    return writer.commit(manifest)


# ---- readers that take a split whole or not at all --------------------------------------------

def _load_manifest(split_path: Path) -> dict[str, Any]:
    if not split_path.is_dir():
        if split_path.parent.is_dir():
            try:  # a writer killed between its two renames leaves the old version aside
                recover_dir(split_path)
            except OSError:
                pass
        if not split_path.is_dir():
            raise SplitNotFoundError(f"no built split at {split_path} (build it with "
                                     f"`build-task {split_path.parent.name} --split "
                                     f"{split_path.name} --out {split_path.parent.parent}`)")
    path = split_path / MANIFEST
    if not path.is_file():
        if (split_path / LEGACY_MANIFEST).is_file():
            raise SplitDamagedError(
                f"{split_path} was written by an older version of the toolkit (manifest.json "
                f"beside the shards, no checksums), which data loaders and this version cannot "
                f"trust; rebuild it: {rebuild_hint(split_path)}")
        raise SplitNotFoundError(f"no {MANIFEST} in {split_path}: not a finished split (build "
                                 f"it with `build-task {split_path.parent.name} --split "
                                 f"{split_path.name}`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _damaged(split_path, f"{path} cannot be read as JSON ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise _damaged(split_path, f"{path} has no `files` table of shard checksums")
    return manifest


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest of the split folder `path` (or of a manifest file given directly), without
    checking the data files: see `verify_split` for that."""
    p = Path(path)
    if p.is_file():
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise SplitDamagedError(f"{p} is not a JSON manifest ({exc})") from exc
    return _load_manifest(p)


def _files(manifest: dict[str, Any], key: str) -> dict[str, FileInfo]:
    return {name: FileInfo(int(e["num_bytes"]), int(e["num_rows"]), str(e["sha256"]))
            for name, e in (manifest.get(key) or {}).items()}


def _visible_files(split_path: Path) -> set[str]:
    """Every file a data loader would pick up in the split folder (relative paths)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(split_path):
        dirnames[:] = [d for d in dirnames if not _hidden(d)]
        rel = Path(dirpath).relative_to(split_path)
        out.update(str(rel / f) if str(rel) != "." else f for f in filenames if not _hidden(f))
    return out


def verify_split(path: str | os.PathLike, content: bool = False) -> dict[str, Any]:
    """The manifest of the split at `path` after checking its files against it: exactly the
    manifest's shards present, each of the recorded size, row counts adding up to `n`, every
    side file present with its size; with `content`, every shard's and side file's sha256 too.
    Raises `SplitNotFoundError` or `SplitDamagedError` (naming the split and the fix)."""
    split_path = Path(path)
    manifest = _load_manifest(split_path)
    shards = _files(manifest, "files")
    problems = []
    present = _visible_files(split_path)
    for name in sorted(set(shards) - present):
        problems.append(f"missing shard {name}")
    for name in sorted(present - set(shards)):
        problems.append(f"extra file {name}, not in the manifest (a data loader would read it "
                        f"as part of the split)")
    side = {f"{META_DIR}/{k}": v for k, v in _files(manifest, "side_files").items()}
    for name, info in [*shards.items(), *side.items()]:
        p = split_path / name
        if not p.is_file():
            if name in side:
                problems.append(f"missing side file {name}")
            continue
        size = p.stat().st_size
        if size != info.num_bytes:
            problems.append(f"{name} has {size} bytes, the manifest says {info.num_bytes} "
                            f"(truncated or replaced)")
        elif content:
            with open(p, "rb") as handle:
                if _sha256(handle) != info.sha256:
                    problems.append(f"{name} is not the file that was written (sha256 differs: "
                                    f"a foreign or modified shard)")
    rows = sum(i.num_rows for i in shards.values())
    n = manifest.get("n")
    records = manifest.get("records")
    if n != rows or not isinstance(records, list) or len(records) != rows:
        problems.append(f"the manifest is inconsistent: n = {n}, {rows} rows in its shards, "
                        f"{len(records) if isinstance(records, list) else 'no'} record entries")
    if problems:
        raise _damaged(split_path, *problems)
    return manifest


def split_digest(path: str | os.PathLike) -> str:
    """sha256 naming the split's content: its shards' sha256s, each checked against the file
    (so the digest changes exactly when the data does)."""
    manifest = verify_split(path, content=True)
    h = hashlib.sha256()
    for name, info in sorted(_files(manifest, "files").items()):
        h.update(f"{name}\t{info.sha256}\n".encode())
    return h.hexdigest()


def _read_checked(split_path: Path, name: str, info: FileInfo,
                  on_row: Callable[[dict[str, Any]], None] | None = None) -> Iterator[Record]:
    """The records of one shard or side file, after its sha256 and row count are checked."""
    path = split_path / name
    try:
        handle = open(path, "rb")  # noqa: SIM115 - one handle for hashing and reading
    except FileNotFoundError as exc:
        raise _damaged(split_path, f"{name} disappeared while the split was read") from exc
    with handle:
        if _sha256(handle) != info.sha256:
            raise _damaged(split_path, f"{name} is not the file that was written (sha256 "
                                        f"differs: a foreign or modified shard)")
        handle.seek(0)
        pf = pq.ParquetFile(handle)
        if pf.metadata.num_rows != info.num_rows:
            raise _damaged(split_path, f"{name} has {pf.metadata.num_rows} rows, the manifest "
                                        f"says {info.num_rows}")
        # Batches keep memory bounded (BLINK's Art_Style images are megapixels each).
        for batch in pf.iter_batches(batch_size=64):
            for row in batch.to_pylist():
                if on_row is not None:
                    on_row(row)
                yield Record.from_row(row)


def iter_records(path: str | os.PathLike, pattern: str = DATA_PATTERN) -> Iterator[Record]:
    """Records of a finished split folder, in manifest order, each shard checked (see the
    module docstring). Another `pattern` reads the split's side files of that name pattern
    (e.g. "removed-*.parquet"), checked alike."""
    split_path = Path(path)
    manifest = verify_split(split_path)
    if pattern == DATA_PATTERN:
        expected = iter(enumerate((e.get("idx") for e in manifest["records"]), 1))

        def check_id(row: dict[str, Any]) -> None:
            k, idx = next(expected)
            if row.get("idx") != idx:
                raise _damaged(split_path, f"row {k} has idx {row.get('idx')!r}, the manifest "
                                            f"says {idx!r}")

        for name, info in _files(manifest, "files").items():
            yield from _read_checked(split_path, name, info, check_id)
        return
    for name, info in sorted(_files(manifest, "side_files").items()):
        if fnmatch.fnmatchcase(name, pattern):
            yield from _read_checked(split_path, f"{META_DIR}/{name}", info)


def read_split(path: str | os.PathLike) -> list[Record]:
    return list(iter_records(path))


def side_file(path: str | os.PathLike, name: str) -> Path:
    """The checked path of side file `name` of the split at `path` (see `add_side_file`)."""
    split_path = Path(path)
    manifest = verify_split(split_path)
    info = _files(manifest, "side_files").get(name)
    if info is None:
        raise FileNotFoundError(f"split {split_path} has no side file {name!r} (it has: "
                                f"{', '.join(manifest.get('side_files') or {}) or 'none'})")
    target = split_path / META_DIR / name
    with open(target, "rb") as handle:
        if _sha256(handle) != info.sha256:
            raise _damaged(split_path, f"{META_DIR}/{name} is not the file that was written")
    return target


assert COLUMNS == tuple(ARROW_SCHEMA.names), "record columns and Arrow schema disagree"
