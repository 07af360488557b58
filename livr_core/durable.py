"""Crash-safe folders for checkpoints: publish, delete and repair after a kill.

`livr_core` depends on nothing of ours, so this is its own small copy of the folder protocol of
`builders.atomic`, with the same leftover names (`.<name>.<kind>-<host>-<pid>`), so a leftover
is traceable to the process that made it whichever package wrote it.

* `temp_path(target, kind)`: the hidden sibling a process works in (`tmp`), moves the previous
  version to (`old`) or deletes through (`del`).
* `publish(tmp, target)`: fsync every file and folder of `tmp`, rename `target` aside, rename
  `tmp` into place, fsync the parent, delete the old copy. A kill at any instant leaves either
  the old or the new version under `target`, or the old one aside for `recover` to put back.
* `discard(target)`: rename it to a hidden `del` name, then delete, so a kill midway never leaves
  half a folder under a name a reader trusts.
* `recover(root)`: for every leftover in `root` of a process of this host that no longer runs:
  an `old` copy is put back when its target is missing ("rolled back") or deleted when the new
  version had been published ("finished"); anything else (`tmp`, `del`) is deleted. Leftovers of
  live processes or other hosts are never touched. Each action is logged and returned.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
from pathlib import Path

log = logging.getLogger(__name__)

_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>[a-z]+)-(?P<host>[^/]+)-(?P<pid>\d+)$")


def host() -> str:
    """This machine's name as written into temporary names (as `builders.atomic.host`)."""
    return socket.gethostname().replace("/", "_") or "localhost"


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child not yet reaped holds no files and writes nothing
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def temp_path(target: Path, kind: str) -> Path:
    """`.<name>.<kind>-<host>-<pid>` beside `target`."""
    return target.with_name(f".{target.name}.{kind}-{host()}-{os.getpid()}")


def fsync_dir(path: Path) -> None:
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


def fsync_tree(directory: Path) -> None:
    """Flush every file and folder under `directory`, so that a rename publishes whole files
    even across a power loss."""
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        elif path.is_dir():
            fsync_dir(path)
    fsync_dir(directory)


def publish(tmp: Path, target: Path) -> None:
    """Make the finished folder `tmp` the folder `target`, replacing any previous version."""
    fsync_tree(tmp)
    old = None
    if target.exists():  # rename() cannot replace a non-empty folder: move it aside first
        old = temp_path(target, "old")
        remove(old)
        os.replace(target, old)
    os.replace(tmp, target)
    fsync_dir(target.parent)
    if old is not None:
        remove(old)


def discard(target: Path) -> None:
    """Delete the folder `target`; a kill midway leaves a hidden leftover, never half of it."""
    trash = temp_path(target, "del")
    remove(trash)
    os.replace(target, trash)
    fsync_dir(target.parent)
    remove(trash)


def recover(root: Path) -> list[str]:
    """Repair what dead processes of this host left in `root`; returns (and logs) each action."""
    root = Path(root)
    done: list[str] = []
    if not root.is_dir():
        return done
    for leftover in sorted(root.iterdir()):
        m = _LEFTOVER.match(leftover.name)
        if m is None or m["host"] != host() or pid_alive(int(m["pid"])):
            continue
        target, pid = root / m["name"], m["pid"]
        if m["kind"] == "old" and not target.exists():
            os.replace(leftover, target)
            fsync_dir(root)
            done.append(f"rolled back an interrupted replace of {target} (pid {pid} died before "
                        "publishing the new version); the previous version is back")
        elif m["kind"] == "old":
            remove(leftover)
            done.append(f"finished an interrupted replace of {target} (pid {pid} died after "
                        "publishing the new version); removed the old copy")
        else:
            remove(leftover)
            done.append(f"removed {leftover.name}, left by pid {pid} (no longer running)")
    for line in done:
        log.warning(line)
    return done


def remove(path: Path) -> None:
    """Delete a file or folder tree if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
