"""Crash-safe files and folders, and one writer at a time: the shared primitives.

Owns, for `builders`, `dedup` and `harness` alike (`livr_core` depends on nothing of ours and
keeps its own copy for checkpoints):

* `atomic_write_bytes` / `atomic_write_text` / `atomic_write_json`: write a sibling temporary
  file, fsync it, `os.replace` it over the target, fsync the folder. A kill at any instant leaves
  the old file or the new one, never half of one.
* `temp_sibling`: the name of a temporary sibling, `.<name>.<kind>-<host>-<pid>`, so two
  processes (on one host or several sharing a file system) never share a temporary path, and a
  leftover can be traced to its owner (`owner_of`, `is_orphan`).
* `replace_dir` / `recover_dir`: publish a finished temporary folder as `target`, replacing an
  existing one through a rename aside (`.<name>.old-<host>-<pid>`). A kill between the two
  renames leaves the old version aside; `recover_dir` (called by every writer before it starts)
  puts it back when the new one never arrived ("rolled back") or deletes it when the new one did
  ("finished"), and removes temporary folders of dead processes. Messages go to this module's
  logger.
* `FileLock`: an exclusive lock file (`fcntl.flock` on `<path>`, which the kernel releases when
  the holder dies, plus the holder's pid, host and purpose written in the file, so a refusal can
  say who holds it and a lock file left by a dead process is taken over with a message).

Why here: `dedup` and `harness` both import `builders` (never the other way round), so this is
the lowest package every writer of ours can share.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Self

log = logging.getLogger(__name__)

_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>[a-z]+)-(?P<host>[^/]+)-(?P<pid>\d+)$")


def host() -> str:
    """This machine's name as written into temporary names and lock files (no dashes lost)."""
    return socket.gethostname().replace("/", "_") or "localhost"


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False  # 0 and negatives address process groups, not a process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:  # a zombie (killed child not yet reaped) holds no files and writes nothing
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def temp_sibling(path: str | os.PathLike, kind: str = "tmp") -> Path:
    """`.<name>.<kind>-<host>-<pid>` beside `path`: unique per process, traceable to its owner."""
    p = Path(path)
    if not kind.isalpha() or not kind.islower():
        raise ValueError(f"temporary kind must be lower-case letters, got {kind!r}")
    return p.with_name(f".{p.name}.{kind}-{host()}-{os.getpid()}")


def owner_of(temp: str | os.PathLike) -> tuple[str, str, str, int] | None:
    """(target name, kind, host, pid) of a name made by `temp_sibling`; None for other names."""
    m = _TEMP_RE.match(Path(temp).name)
    if m is None:
        return None
    return m["name"], m["kind"], m["host"], int(m["pid"])


def is_orphan(temp: str | os.PathLike) -> bool:
    """True when `temp` was made by a process of this host that no longer runs.

    A temporary path of another host is never judged (its pid means nothing here)."""
    owner = owner_of(temp)
    return owner is not None and owner[2] == host() and not pid_alive(owner[3])


def fsync_file(path: str | os.PathLike) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: str | os.PathLike) -> None:
    """Make renames and creations inside `path` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename is still atomic
    finally:
        os.close(fd)


def fsync_tree(directory: str | os.PathLike) -> None:
    """Flush every file and folder under `directory`, so a rename publishes complete content."""
    root = Path(directory)
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            fsync_file(path)
        elif path.is_dir():
            fsync_dir(path)
    fsync_dir(root)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    target = Path(path)
    tmp = temp_sibling(target)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    """The one JSON style of our files: sorted keys, indent 2, UTF-8 kept, final newline."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, dumps_json(obj))


def replace_dir(tmp: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Publish the finished folder `tmp` as `target` (replacing it if present), crash-safely.

    `tmp` is fsynced first. With `target` present it is renamed aside, `tmp` renamed into place,
    then the old copy deleted; `recover_dir` repairs a kill between any two of these steps."""
    tmp, target = Path(tmp), Path(target)
    fsync_tree(tmp)
    old = None
    if target.exists():
        old = temp_sibling(target, "old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    os.replace(tmp, target)
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old)
    return target


def recover_dir(target: str | os.PathLike) -> list[str]:
    """Repair what dead processes left around `target`; returns (and logs) what was done.

    * `.<name>.old-*` of a dead owner: if `target` exists the replace had finished and the old
      copy is deleted; otherwise the new version never arrived and the old one is put back.
    * `.<name>.tmp-*` (any kind but `old`) of a dead owner: an unfinished write, deleted.
    Leftovers of live processes, or of other hosts, are never touched."""
    target = Path(target)
    parent = target.parent
    done: list[str] = []
    if not parent.is_dir():
        return done
    for leftover in sorted(parent.glob(f".{target.name}.*")):
        owner = owner_of(leftover)
        if owner is None or owner[0] != target.name or not is_orphan(leftover):
            continue
        kind, pid = owner[1], owner[3]
        if kind == "old":
            if target.exists():
                _remove(leftover)
                done.append(f"finished an interrupted replace of {target} (pid {pid} died after "
                            f"publishing the new version); removed the old copy")
            else:
                os.replace(leftover, target)
                fsync_dir(parent)
                done.append(f"rolled back an interrupted replace of {target} (pid {pid} died "
                            f"before publishing the new version); the previous version is back")
        else:
            _remove(leftover)
            done.append(f"removed {leftover.name}, left by pid {pid} (no longer running)")
    for line in done:
        log.warning(line)
    return done


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class LockHeld(RuntimeError):
    """Another live process holds the lock; the message names it and what it is doing."""

    def __init__(self, path: Path, holder: dict[str, Any], what: str) -> None:
        self.path, self.holder = path, holder
        who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
               f" ({holder.get('what', 'unknown work')}, since {holder.get('since', '?')})")
        super().__init__(f"{what}: locked by {who}; lock file {path}")


class FileLock:
    """An exclusive lock on `path` for one process, usable as a context manager.

    `wait=None` refuses at once (`LockHeld`) when another live process holds it; a number waits
    up to that many seconds. A lock file whose holder died is taken over, with a message naming
    the dead holder. The lock is released (and its file removed) on exit, and by the kernel if
    the process dies."""

    POLL_S = 0.2
    HOLDER_WAIT_S = 2.0  # how long a refusal waits for the new holder to write its name

    def __init__(self, path: str | os.PathLike, what: str, wait: float | None = None) -> None:
        self.path = Path(path)
        self.what = what
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this FileLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = None if self.wait is None else time.monotonic() + self.wait
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if deadline is None or time.monotonic() >= deadline:
                    raise LockHeld(self.path, self._read_holder(), self.what) from None
                time.sleep(self.POLL_S)
                continue
            # The holder before us may have unlinked the file after we opened it: then we hold a
            # lock on a name nobody else sees, so start again on the current file.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            break
        previous = self._read_fd(fd)
        if previous and (previous.get("pid"), previous.get("host")) != (os.getpid(), host()):
            log.warning("taking over the lock %s left by pid %s on %s (%s), which no longer runs",
                        self.path, previous.get("pid", "?"), previous.get("host", "?"),
                        previous.get("what", "unknown work"))
        info = {"pid": os.getpid(), "host": host(), "what": self.what,
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info, sort_keys=True) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self.path.unlink(missing_ok=True)  # while still holding it: see `acquire`
        finally:
            os.close(fd)

    @staticmethod
    def _read_fd(fd: int) -> dict[str, Any]:
        raw = os.pread(fd, 4096, 0)
        try:
            info = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {"what": "unreadable lock file"}
        return info if isinstance(info, dict) else {}

    def _read_holder(self) -> dict[str, Any]:
        """Who holds the lock. The holder writes its pid just after taking the lock, so an empty
        file means "a moment ago": read again for up to HOLDER_WAIT_S before giving up."""
        deadline = time.monotonic() + self.HOLDER_WAIT_S
        while True:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return {}
            try:
                info = self._read_fd(fd)
            finally:
                os.close(fd)
            if info or time.monotonic() >= deadline:
                return info
            time.sleep(0.02)
