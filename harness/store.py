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
Every file is written to a temporary name and renamed, so a kill never leaves half a file.
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

from harness.cells import CellConfig
from harness.config import ConfigError
from harness.executor import CellFolder

HEARTBEAT_S = 60.0  # cheap enough to touch a file once a minute
STALE_AFTER_S = 600.0  # ten missed heartbeats: the other machine is gone

NEW, RUNNING, DONE, FAILED, INTERRUPTED, CONFLICT = (
    "new", "running", "done", "failed", "interrupted", "conflict",
)
CONFIG, STATUS, HEARTBEAT = "config.json", "status.json", "heartbeat"
METRICS, PREDICTIONS, ERROR, CHECKPOINTS = (
    "metrics.json", "predictions.jsonl", "error.txt", "checkpoints",
)

Key = tuple[str, str, str, str]  # (table, backbone, task, method)


class ConfigConflict(ConfigError):
    """Cell folders hold results of a different config than the one planned."""


@dataclass(frozen=True)
class CellState:
    status: str
    hash: str
    attempts: int
    host: str
    pid: int
    heartbeat_age: float | None  # seconds since the last heartbeat; None if none


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_json(path: Path, obj: Any) -> None:
    _write_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False  # 0 and negatives address process groups, not a process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


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
        folder = self.cell_dir(key)
        path = folder / STATUS
        if not path.is_file():
            config = folder / CONFIG
            if not config.is_file():
                return None
            # config written, status not yet: killed at the very start.
            stored = json.loads(config.read_text(encoding="utf-8"))
            return CellState(INTERRUPTED, stored["hash"], 0, "", 0, None)
        s = json.loads(path.read_text(encoding="utf-8"))
        beat = folder / HEARTBEAT
        age = time.time() - beat.stat().st_mtime if beat.exists() else None
        return CellState(s["status"], s["hash"], s["attempts"], s["host"], s["pid"], age)

    def is_live(self, state: CellState) -> bool:
        """Is a process (other than this one) still working on this cell?"""
        if state.status != RUNNING:
            return False
        if state.host == socket.gethostname():
            return state.pid != os.getpid() and _pid_alive(state.pid)
        return state.heartbeat_age is not None and state.heartbeat_age < self.stale_after_s

    def status_of(self, config: CellConfig) -> str:
        """new / done / failed / interrupted / running (live elsewhere) / conflict."""
        state = self.state(config.key)
        if state is None:
            return NEW
        if state.hash != config.hash:
            return CONFLICT
        if state.status == RUNNING:
            return RUNNING if self.is_live(state) else INTERRUPTED
        return state.status

    def conflicts(self, configs: Iterable[CellConfig]) -> list[tuple[CellConfig, str]]:
        out = []
        for c in configs:
            state = self.state(c.key)
            if state is not None and state.hash != c.hash:
                out.append((c, state.hash))
        return out

    def config_diff(self, config: CellConfig) -> list[str]:
        """Human-readable differences between the stored config and `config` (top-level keys)."""
        stored = json.loads((self.cell_dir(config.key) / CONFIG).read_text(encoding="utf-8"))
        now = config.to_json()
        return [
            f"{k}: {json.dumps(stored.get(k))} -> {json.dumps(now.get(k))}"
            for k in sorted(set(stored) | set(now))
            if k != "hash" and stored.get(k) != now.get(k)
        ]

    def load_metrics(self, key: Key) -> dict[str, Any] | None:
        """The metrics of a finished cell, else None."""
        state = self.state(key)
        path = self.cell_dir(key) / METRICS
        if state is None or state.status != DONE or not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    # --- writing ------------------------------------------------------------------------------

    def set_aside(self, key: Key) -> Path:
        """Move a conflicting cell folder out of the way (never deleted) and return where to."""
        folder = self.cell_dir(key)
        state = self.state(key)
        base = f"{folder.name}.replaced-{state.hash if state else 'unknown'}"
        target = folder.with_name(base)
        n = 1
        while target.exists():
            n += 1
            target = folder.with_name(f"{base}.{n}")
        folder.rename(target)
        return target

    def _status(self, config: CellConfig, status: str, attempts: int, **extra: Any) -> None:
        path = self.cell_dir(config.key) / STATUS
        # Keep the attempt's start time and previous status when it finishes.
        keep = status != RUNNING and path.is_file()
        old = json.loads(path.read_text(encoding="utf-8")) if keep else {}
        _write_json(path, {
            **old, "status": status, "hash": config.hash, "attempts": attempts,
            "host": socket.gethostname(), "pid": os.getpid(), **extra,
        })

    def begin(self, config: CellConfig) -> CellFolder:
        """Mark the cell running (attempt n+1) and return its folder."""
        folder = self.cell_dir(config.key)
        state = self.state(config.key)
        if state is not None and state.hash != config.hash:
            raise ConfigConflict(f"{folder} holds config {state.hash}, not {config.hash}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CHECKPOINTS).mkdir(exist_ok=True)
        if not (folder / CONFIG).is_file():
            _write_json(folder / CONFIG, config.to_json())
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
        _write_atomic(folder / PREDICTIONS, lines)
        _write_json(folder / METRICS, metrics)
        self._status(config, DONE, self._attempts(config), finished=time.time())

    def fail(self, config: CellConfig, traceback_text: str) -> None:
        _write_atomic(self.cell_dir(config.key) / ERROR, traceback_text)
        self._status(config, FAILED, self._attempts(config), finished=time.time())

    def interrupt(self, config: CellConfig) -> None:
        self._status(config, INTERRUPTED, self._attempts(config), finished=time.time())

    def _attempts(self, config: CellConfig) -> int:
        state = self.state(config.key)
        return state.attempts if state else 1
