"""Fault injection for `builders.atomic`: kills between renames, dead writers, two processes."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from builders import atomic
from builders.atomic import FileLock, LockHeld


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _as_dead(path: Path, pid: int) -> Path:
    """Rename a `temp_sibling` name of ours to the same name owned by the dead `pid`."""
    name, kind, host, _ = atomic.owner_of(path)
    dead = path.with_name(f".{name}.{kind}-{host}-{pid}")
    os.replace(path, dead)
    return dead


def test_atomic_write_keeps_old_content_when_the_replace_fails(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    atomic.atomic_write_json(target, {"v": 1})

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic.atomic_write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]  # no temp left


def test_temp_names_carry_host_and_pid_and_parse_back(tmp_path):
    t = atomic.temp_sibling(tmp_path / "train", "tmp")
    assert t.parent == tmp_path and t.name.startswith(".train.tmp-")
    assert atomic.owner_of(t) == ("train", "tmp", atomic.host(), os.getpid())
    assert atomic.owner_of(tmp_path / "train") is None
    assert not atomic.is_orphan(t)  # we are alive
    with pytest.raises(ValueError):
        atomic.temp_sibling(tmp_path / "x", "tmp-1")


def _publish(tmp_path: Path, version: str) -> Path:
    staging = atomic.temp_sibling(tmp_path / "split")
    staging.mkdir()
    (staging / "data.txt").write_text(version)
    return staging


def test_kill_between_the_two_renames_is_rolled_back(tmp_path, monkeypatch, caplog):
    target = tmp_path / "split"
    atomic.replace_dir(_publish(tmp_path, "old"), target)
    new = _publish(tmp_path, "new")
    real_replace = os.replace
    calls = []

    def die_after_first(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")  # the process dies between the two renames
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", die_after_first)
    with pytest.raises(KeyboardInterrupt):
        atomic.replace_dir(new, target)
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert not target.exists()  # the instant of the kill: neither version at the name
    # The process that did this is gone: make its leftovers belong to a dead pid.
    dead = _dead_pid()
    for leftover in tmp_path.glob(".split.*"):
        _as_dead(leftover, dead)
    with caplog.at_level(logging.WARNING, logger="builders.atomic"):
        done = atomic.recover_dir(target)
    assert (target / "data.txt").read_text() == "old"
    assert any("rolled back" in line for line in done)
    assert any("removed .split.tmp-" in line for line in done)
    assert "rolled back" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split"]


def test_kill_after_publishing_finishes_the_replace(tmp_path):
    target = tmp_path / "split"
    atomic.replace_dir(_publish(tmp_path, "new"), target)
    old = tmp_path / f".split.old-{atomic.host()}-{_dead_pid()}"
    old.mkdir()
    (old / "data.txt").write_text("old")
    done = atomic.recover_dir(target)
    assert (target / "data.txt").read_text() == "new"
    assert not old.exists() and "finished" in done[0]


def test_recover_leaves_live_and_foreign_leftovers_alone(tmp_path):
    target = tmp_path / "split"
    live = atomic.temp_sibling(target)
    live.mkdir()
    foreign = tmp_path / ".split.tmp-some-other-host-1"
    foreign.mkdir()
    assert atomic.recover_dir(target) == []
    assert live.exists() and foreign.exists()


def _hold(path: str, ready, release) -> None:
    with FileLock(path, "building jigsaw/train"):
        ready.set()
        release.wait(30)


def test_second_process_is_refused_while_the_first_holds_the_lock(tmp_path):
    lock_path = tmp_path / "jigsaw" / ".train.lock"
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(lock_path), ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(LockHeld) as info:
            FileLock(lock_path, "building jigsaw/train").acquire()
        assert f"pid {holder.pid}" in str(info.value)
        assert "building jigsaw/train" in str(info.value)
        with pytest.raises(LockHeld):  # a short wait times out too
            FileLock(lock_path, "x", wait=0.3).acquire()
    finally:
        release.set()
        holder.join(30)
    with FileLock(lock_path, "after") as lock:  # released by the holder: free again
        assert lock.held
    assert not lock_path.exists()


def test_lock_of_a_killed_process_is_taken_over_with_a_message(tmp_path, caplog):
    lock_path = tmp_path / ".cell.lock"
    script = textwrap.dedent(f"""
        import os
        from builders.atomic import FileLock
        FileLock({str(lock_path)!r}, "running table1 cell").acquire()
        os._exit(9)  # killed: no release, the file stays with our pid in it
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2],
                          check=False)
    assert proc.returncode == 9 and lock_path.exists()
    with caplog.at_level(logging.WARNING, logger="builders.atomic"), \
            FileLock(lock_path, "next run"):
        info = json.loads(lock_path.read_text())
        assert info["pid"] == os.getpid() and info["what"] == "next run"
    assert "taking over the lock" in caplog.text and "running table1 cell" in caplog.text


def test_a_refusal_names_a_holder_that_has_not_written_its_name_yet(tmp_path):
    """The race behind a flaky refusal: the holder has the lock but its file is still empty
    (between flock and the write); the refusal waits for the name instead of saying `pid ?`."""
    import fcntl
    import threading

    lock_path = tmp_path / ".cell.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held, nothing written yet

    def write_name_later():
        import time

        time.sleep(0.3)
        os.pwrite(fd, json.dumps({"pid": 4242, "host": "h", "what": "x"}).encode(), 0)

    writer = threading.Thread(target=write_name_later)
    writer.start()
    try:
        with pytest.raises(LockHeld, match="pid 4242 on h"):
            FileLock(lock_path, "second").acquire()
    finally:
        writer.join()
        os.close(fd)
