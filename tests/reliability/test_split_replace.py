"""Replacing a split is recoverable and durable: a process killed between the two renames of a
split replace (`build-task --overwrite`, dedup's rewrite) leaves the old version aside, and the
next reader or writer puts it back (or finishes the replace) and says so; shards and manifest are
fsynced before the rename that publishes them; dedup's report files are replaced atomically."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from builders import atomic
from builders.io import MANIFEST, read_manifest, read_split, split_dir
from dedup import report

from . import splits

ROOT = Path(__file__).parents[2]
TASK = "art_style"

# Runs in a child process: `os.replace` kills the process (no cleanup, like SIGKILL) at the
# rename that publishes the new split, after the old one was moved aside.
KILL_AT_SECOND_RENAME = """
import os, sys
from builders import atomic
real, calls = os.replace, []
def replace(src, dst):
    calls.append(dst)
    if len(calls) == {call}:
        os._exit(9)
    real(src, dst)
atomic.os.replace = replace
"""


def _run_killed(code: str, call: int = 2) -> None:
    script = textwrap.dedent(KILL_AT_SECOND_RENAME.format(call=call)) + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 9, proc.stderr


def _ids(path: Path) -> list[str]:
    return [r.idx for r in read_split(path)]


def test_killed_overwrite_rolls_back_on_the_next_read(tmp_path, caplog):
    built = tmp_path / "built"
    path = splits.write(built, TASK, "train", n=6, seed=1)
    old_ids, old_manifest = _ids(path), read_manifest(path)
    _run_killed(f"""
        from tests.reliability import splits
        splits.write(__import__("pathlib").Path({str(built)!r}), {TASK!r}, "train", n=3, seed=2,
                     overwrite=True)
    """)
    assert not path.exists()  # the instant of the kill: the old version is aside
    leftovers = sorted(p.name for p in path.parent.iterdir())
    assert any(n.startswith(".train.old-") for n in leftovers), leftovers
    with caplog.at_level(logging.WARNING, logger="builders.atomic"):
        assert _ids(path) == old_ids  # the reader rolled the replace back
    assert "rolled back" in caplog.text
    assert read_manifest(path) == old_manifest
    # the dead writer's (hidden) lock file stays until the next writer takes it over
    assert sorted(p.name for p in path.parent.iterdir()) == [".train.lock", "train"]


def test_killed_overwrite_is_repaired_by_the_next_build(tmp_path, caplog):
    built = tmp_path / "built"
    splits.write(built, TASK, "train", n=6, seed=1)
    _run_killed(f"""
        from tests.reliability import splits
        splits.write(__import__("pathlib").Path({str(built)!r}), {TASK!r}, "train", n=3, seed=2,
                     overwrite=True)
    """)
    with caplog.at_level(logging.WARNING, logger="builders.atomic"):
        path = splits.write(built, TASK, "train", n=4, seed=3, overwrite=True)
    assert "rolled back" in caplog.text
    assert len(_ids(path)) == 4
    assert sorted(p.name for p in path.parent.iterdir()) == ["train"]


def test_kill_after_publishing_finishes_the_replace(tmp_path, caplog):
    """Killed after the new split arrived but before the old copy was deleted."""
    built = tmp_path / "built"
    splits.write(built, TASK, "train", n=6, seed=1)
    code = f"""
        import shutil
        shutil.rmtree = lambda *a, **k: os._exit(9)
        from tests.reliability import splits
        splits.write(__import__("pathlib").Path({str(built)!r}), {TASK!r}, "train", n=3, seed=2,
                     overwrite=True)
    """
    _run_killed(code, call=99)
    path = split_dir(built, TASK, "train")
    with caplog.at_level(logging.WARNING, logger="builders.atomic"):
        assert len(_ids(path)) == 3  # the new version is in place and whole
        splits.write(built, TASK, "train", n=3, seed=2, overwrite=True)  # the next writer tidies
    assert "finished an interrupted replace" in caplog.text
    assert sorted(p.name for p in path.parent.iterdir()) == ["train"]


def test_killed_dedup_apply_leaves_the_old_split_readable(tmp_path, caplog):
    built = tmp_path / "built"
    path = splits.write(built, TASK, "train", n=6, seed=1)
    before = splits.tree(path)
    _run_killed(f"""
        from pathlib import Path
        from builders.io import read_split
        from dedup.apply import apply_split
        from dedup.pairs import Removal
        path = Path({str(path)!r})
        rows = read_split(path)
        apply_split(path, rows, [Removal("train", rows[0].idx, "phash_ssim")], "blink", {{}}, 4)
    """)
    assert not path.exists()
    with caplog.at_level(logging.WARNING, logger="builders.atomic"):
        assert len(_ids(path)) == 6
    assert "rolled back" in caplog.text
    assert splits.tree(path) == before  # byte for byte the split before dedup
    # and dedup applied again completes
    from dedup.apply import apply_split
    from dedup.pairs import Removal
    rows = read_split(path)
    apply_split(path, rows, [Removal("train", rows[0].idx, "phash_ssim")], "blink", {}, 4)
    assert len(_ids(path)) == 5 and read_manifest(path)["dedup"]["n_removed"] == 1


def test_shards_and_manifest_are_fsynced_before_the_publishing_rename(tmp_path, monkeypatch):
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    path = splits.write(tmp_path / "built", TASK, "train", n=6)
    publish = events.index(("replace", str(path)))
    synced = {Path(p).name for kind, p in events[:publish] if kind == "fsync"}
    assert {"data-00000-of-00002.parquet", "data-00001-of-00002.parquet", "manifest.json",
            "dataset_info.json"} <= synced
    assert (path / MANIFEST).is_file()


def test_dedup_reports_are_replaced_atomically(tmp_path, monkeypatch):
    """A failure while writing the reports leaves every earlier report file intact and whole,
    flagged_sources.json (which a refill trusts) included."""
    out = tmp_path / "dedup-blink"
    out.mkdir()
    old = {"summary.json": '{"old": 1}\n', "flagged_sources.json": '{"old": 1}\n',
           "pairs.jsonl": '{"old": 1}\n', "index.html": "old\n", "removed_ids.txt": "old\n"}
    for name, text in old.items():
        (out / name).write_text(text)
    calls = []

    def dies_third(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        os.rename(src, dst)

    monkeypatch.setattr(atomic.os, "replace", dies_third)
    with pytest.raises(KeyboardInterrupt):
        report.write_reports(out, "blink", [], {}, {"against": "blink"}, 5)
    for name, was in old.items():
        text = (out / name).read_text()
        assert text == was or name in ("pairs.jsonl", "summary.json"), name
        if name.endswith(".json"):
            json.loads(text)
    assert (out / "flagged_sources.json").read_text() == old["flagged_sources.json"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp left


def test_embedding_cache_chunks_are_written_atomically(tmp_path, monkeypatch):
    """A failed flush leaves no chunk (whole or partial) and nothing for the next run to trip
    on; a good flush names its chunk with host and pid and reads back."""
    import numpy as np

    from dedup.embed import EmbeddingCache

    cache = EmbeddingCache(tmp_path, "tiny--random-seed0")
    cache.put_many(["a" * 64, "b" * 64], np.eye(2, 4, dtype=np.float32))

    def disk_full(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", disk_full)
    with pytest.raises(OSError, match="disk full"):
        cache.flush()
    assert list((tmp_path / "tiny--random-seed0").iterdir()) == []
    monkeypatch.undo()
    assert cache.flush() == 2
    (chunk,) = (tmp_path / "tiny--random-seed0").iterdir()
    assert chunk.name == f"emb-00000-{atomic.host()}-{os.getpid()}.npz"
    again = EmbeddingCache(tmp_path, "tiny--random-seed0")
    assert len(again) == 2 and np.array_equal(again.get("b" * 64), np.eye(2, 4)[1])
