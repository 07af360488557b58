"""The run store: one folder per cell, `<runs>/<table>/<backbone>/<task>/<method>/`.

Owns `RunStore`, `CellState`, `ConfigConflict`, the status names and `Heartbeat`. A cell folder
holds:

    config.json        the resolved config and its hash (written once; the cell's identity)
    status.json        status, hash, attempts, host, pid, start/finish times
    heartbeat          touched every HEARTBEAT_S seconds while the cell runs
    metrics.json       per-task metrics and the macro mean (written before status "done")
    predictions.jsonl  one line per test example: idx, task, raw, parsed, gold, correct
    error.txt          the traceback of a failed attempt (error-attempt<k>.txt once retried)
    checkpoints/       the executor's; kept across attempts so an interrupted cell resumes

Statuses: "done" cells are skipped; "failed" and "interrupted" ones run again (resuming from
checkpoints/). A "running" cell whose process is gone (same host: its pid is dead; another host:
no heartbeat for STALE_AFTER_S) counts as interrupted; one whose process is alive is left alone.
A folder whose stored hash differs from the planned one is a CONFLICT: it is never reused or
overwritten silently; `set_aside` moves it to `<method>.replaced-<old hash>` on request.

One process per cell: running a cell holds `lock(key)`, an exclusive `builders.atomic.FileLock`
on the sibling `.<method>.lock` (outside the folder, so the folder can be moved while locked),
released by the kernel if the process dies. A second process finds it held and skips the cell.

A damaged file costs only its cell: a status.json or config.json that does not parse, or lacks
a field, or the metrics.json of a "done" cell that does not parse, makes the cell DAMAGED, with
the file and the fault in `CellState.problem`; such a cell is never run over or reused, and
`set_aside` moves it away on request like a conflict.
Every file is written atomically (`builders.atomic`: a temporary name with host and pid, fsync,
rename), so a kill never leaves half a file; temporaries of dead processes are removed when the
cell next begins.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builders.atomic import (
    FileLock,
    LockHeld,
    atomic_write_json,
    atomic_write_text,
    pid_alive,
    recover_dir,
)
from harness.cells import CellConfig
from harness.errors import ConfigError
from harness.executor import CellFolder

HEARTBEAT_S = 60.0  # cheap enough to touch a file once a minute
STALE_AFTER_S = 600.0  # ten missed heartbeats: the other machine is gone

NEW, RUNNING, DONE, FAILED, INTERRUPTED, CONFLICT, DAMAGED = (
    "new", "running", "done", "failed", "interrupted", "conflict", "damaged",
)
STATUSES = (NEW, RUNNING, DONE, FAILED, INTERRUPTED)  # the ones status.json may hold
DAMAGED_FIX = ("move the cell folder aside (harness run --replace does) or repair the file; "
               "the cell then runs again")
CONFIG, STATUS, HEARTBEAT = "config.json", "status.json", "heartbeat"
METRICS, PREDICTIONS, ERROR, CHECKPOINTS = (
    "metrics.json", "predictions.jsonl", "error.txt", "checkpoints",
)

Key = tuple[str, str, str, str]  # (table, backbone, task, method)


class ConfigConflict(ConfigError):
    """Cell folders hold results of a different config than the one planned."""


class DamagedFile(ValueError):
    """A cell file does not parse or lacks a field; the message names the file and the fix."""

    def __init__(self, path: Path, why: str) -> None:
        self.path = path
        super().__init__(f"{path}: {why}")


@dataclass(frozen=True)
class CellState:
    status: str
    hash: str
    attempts: int
    host: str
    pid: int
    heartbeat_age: float | None  # seconds since the last heartbeat; None if none
    problem: str = ""  # for DAMAGED: the file and what is wrong with it


# The fields status.json must hold, with their types.
_STATUS_FIELDS = {"status": str, "hash": str, "attempts": int, "host": str, "pid": int}


def read_json(path: Path, fields: Mapping[str, type] | None = None) -> dict[str, Any]:
    """A JSON object from a cell file, or `DamagedFile` naming it (bad JSON, not an object, a
    required field missing or of the wrong type)."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedFile(path, f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise DamagedFile(path, f"holds a {type(obj).__name__}, not a JSON object")
    for key, kind in (fields or {}).items():
        value = obj.get(key)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise DamagedFile(path, f"no valid {key!r} ({kind.__name__}) field")
    return obj


class Heartbeat:
    """Touches a file every `interval` seconds from a daemon thread while the context is open."""

    def __init__(self, path: Path, interval: float) -> None:
        self.path, self.interval = path, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while True:
            self.path.touch()
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> None:
        self.path.touch()
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class RunStore:
    def __init__(
        self, root: Path, heartbeat_s: float = HEARTBEAT_S, stale_after_s: float = STALE_AFTER_S
    ) -> None:
        self.root = Path(root)
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s

    # --- reading ------------------------------------------------------------------------------

    def cell_dir(self, key: Key) -> Path:
        return self.root.joinpath(*key)

    def state(self, key: Key) -> CellState | None:
        """The cell's state; DAMAGED (with the file named) when its files cannot be read."""
        folder = self.cell_dir(key)
        path = folder / STATUS
        try:
            if not path.is_file():
                config = folder / CONFIG
                if not config.is_file():
                    return None
                # config written, status not yet: killed at the very start.
                stored = read_json(config, {"hash": str})
                return CellState(INTERRUPTED, stored["hash"], 0, "", 0, None)
            s = read_json(path, _STATUS_FIELDS)
            if s["status"] not in STATUSES:
                raise DamagedFile(path, f"unknown status {s['status']!r}")
            if s["status"] == DONE:
                self._read_metrics(folder)
        except DamagedFile as exc:
            return CellState(DAMAGED, "", 0, "", 0, None, problem=str(exc))
        beat = folder / HEARTBEAT
        age = time.time() - beat.stat().st_mtime if beat.exists() else None
        return CellState(s["status"], s["hash"], s["attempts"], s["host"], s["pid"], age)

    def is_live(self, state: CellState) -> bool:
        """Is a process (other than this one) still working on this cell?"""
        if state.status != RUNNING:
            return False
        if state.host == socket.gethostname():
            return state.pid != os.getpid() and pid_alive(state.pid)
        return state.heartbeat_age is not None and state.heartbeat_age < self.stale_after_s

    def status_of(self, config: CellConfig) -> str:
        """new / done / failed / interrupted / running (live elsewhere) / conflict / damaged."""
        state = self.state(config.key)
        if state is None:
            return NEW
        if state.status == DAMAGED:
            return DAMAGED
        if state.hash != config.hash:
            return CONFLICT
        if state.status == RUNNING:
            return RUNNING if self.is_live(state) else INTERRUPTED
        return state.status

    def conflicts(self, configs: Iterable[CellConfig]) -> list[tuple[CellConfig, str]]:
        out = []
        for c in configs:
            state = self.state(c.key)
            if state is not None and state.status != DAMAGED and state.hash != c.hash:
                out.append((c, state.hash))
        return out

    def damaged(self, configs: Iterable[CellConfig]) -> list[tuple[CellConfig, str]]:
        """The cells whose files cannot be read, with the file and the fault."""
        states = ((c, self.state(c.key)) for c in configs)
        return [(c, s.problem) for c, s in states if s is not None and s.status == DAMAGED]

    def config_diff(self, config: CellConfig) -> list[str]:
        """Human-readable differences between the stored config and `config` (top-level keys)."""
        try:
            stored = read_json(self.cell_dir(config.key) / CONFIG)
        except (DamagedFile, OSError) as exc:
            return [f"(the stored config cannot be read: {exc})"]
        now = config.to_json()
        return [
            f"{k}: {json.dumps(stored.get(k))} -> {json.dumps(now.get(k))}"
            for k in sorted(set(stored) | set(now))
            if k != "hash" and stored.get(k) != now.get(k)
        ]

    def load_metrics(self, key: Key) -> dict[str, Any] | None:
        """The metrics of a finished cell, else None (a damaged cell has none: see `state`)."""
        state = self.state(key)
        if state is None or state.status != DONE:
            return None
        return self._read_metrics(self.cell_dir(key))

    @staticmethod
    def _read_metrics(folder: Path) -> dict[str, Any]:
        path = folder / METRICS
        if not path.is_file():
            raise DamagedFile(path, 'missing, though status.json says "done"')
        metrics = read_json(path, {"tasks": dict})
        for task, m in metrics["tasks"].items():
            if not isinstance(m, dict):
                raise DamagedFile(path, f"the metrics of task {task!r} are not an object")
        return metrics

    def lock(self, key: Key) -> FileLock:
        """The exclusive lock a process holds while it runs the cell (not yet acquired)."""
        folder = Path(os.path.abspath(self.cell_dir(key)))  # `--out .` has a name too
        return FileLock(folder.with_name(f".{folder.name}.lock"),
                        f"harness run of cell {'/'.join(key)}")

    # --- writing ------------------------------------------------------------------------------

    def set_aside(self, key: Key) -> Path:
        """Move a conflicting or damaged cell folder out of the way (never deleted) and return
        where to; refused (`ConfigConflict`) while another process runs the cell."""
        folder = self.cell_dir(key)
        state = self.state(key)
        tag = "damaged" if state and state.status == DAMAGED else state.hash if state else "unknown"
        base = f"{folder.name}.replaced-{tag}"
        target = folder.with_name(base)
        n = 1
        while target.exists():
            n += 1
            target = folder.with_name(f"{base}.{n}")
        try:
            with self.lock(key):
                folder.rename(target)
        except LockHeld as exc:
            raise ConfigConflict(f"cannot move {folder} aside: {exc}") from None
        return target

    def _status(self, config: CellConfig, status: str, attempts: int, **extra: Any) -> None:
        path = self.cell_dir(config.key) / STATUS
        # Keep the attempt's start time and previous status when it finishes.
        old = {}
        if status != RUNNING and path.is_file():
            try:
                old = read_json(path)
            except DamagedFile:
                pass  # rewritten whole below
        atomic_write_json(path, {
            **old, "status": status, "hash": config.hash, "attempts": attempts,
            "host": socket.gethostname(), "pid": os.getpid(), **extra,
        })

    def begin(self, config: CellConfig) -> CellFolder:
        """Mark the cell running (attempt n+1) and return its folder. The caller holds
        `lock(config.key)`."""
        folder = self.cell_dir(config.key)
        state = self.state(config.key)
        if state is not None and state.status == DAMAGED:
            raise ConfigConflict(f"{state.problem}; the cell is not run over it (move it aside "
                                 "with --replace)")
        if state is not None and state.hash != config.hash:
            raise ConfigConflict(f"{folder} holds config {state.hash}, not {config.hash}")
        folder.mkdir(parents=True, exist_ok=True)
        for name in (CONFIG, STATUS, METRICS, PREDICTIONS, ERROR):
            recover_dir(folder / name)  # temporaries of killed writers
        (folder / CHECKPOINTS).mkdir(exist_ok=True)
        if not (folder / CONFIG).is_file():
            atomic_write_json(folder / CONFIG, config.to_json())
        attempts = (state.attempts if state else 0) + 1
        # A previous attempt's outputs are not this attempt's; its traceback is kept by number.
        for name in (METRICS, PREDICTIONS):
            (folder / name).unlink(missing_ok=True)
        if (folder / ERROR).is_file():
            (folder / ERROR).rename(folder / f"error-attempt{attempts - 1}.txt")
        self._status(config, RUNNING, attempts, started=time.time(),
                     previous=state.status if state else None)
        return CellFolder(folder, folder / CHECKPOINTS, attempts, resumed=state is not None)

    def heartbeat(self, config: CellConfig) -> Heartbeat:
        return Heartbeat(self.cell_dir(config.key) / HEARTBEAT, self.heartbeat_s)

    def finish(
        self,
        config: CellConfig,
        predictions: Iterable[Mapping[str, Any]],
        metrics: Mapping[str, Any],
    ) -> None:
        folder = self.cell_dir(config.key)
        lines = "".join(
            json.dumps(p, sort_keys=True, ensure_ascii=False) + "\n" for p in predictions
        )
        atomic_write_text(folder / PREDICTIONS, lines)
        atomic_write_json(folder / METRICS, metrics)
        self._status(config, DONE, self._attempts(config), finished=time.time())

    def fail(self, config: CellConfig, traceback_text: str) -> None:
        atomic_write_text(self.cell_dir(config.key) / ERROR, traceback_text)
        self._status(config, FAILED, self._attempts(config), finished=time.time())

    def interrupt(self, config: CellConfig) -> None:
        self._status(config, INTERRUPTED, self._attempts(config), finished=time.time())

    def _attempts(self, config: CellConfig) -> int:
        state = self.state(config.key)
        return state.attempts if state else 1
