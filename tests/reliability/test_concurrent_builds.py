"""One writer per split, with two real `build-task` processes on one output folder: the second is
refused while the first builds (before: both reported success and one silently won); with
`--overwrite` it waits for the first, then replaces its result; neither shares a temporary folder.
Dedup is refused while a build holds a split of its task."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from builders.io import read_manifest, read_split, split_dir
from dedup.cli import main as dedup_main

ROOT = Path(__file__).parents[2]

# The first build: the real CLI, held at its first record until `go` exists (it holds the lock).
HELD_BUILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import builders.build as build
    gate, real = Path(sys.argv[1]), build.to_record
    def held(*args, **kwargs):
        (gate / "started").touch()
        while not (gate / "go").exists():
            time.sleep(0.05)
        return real(*args, **kwargs)
    build.to_record = held
    from builders.cli import main
    raise SystemExit(main(sys.argv[2:]))
""")


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _args(coco: Path, out: Path, seed: int) -> list[str]:
    return ["jigsaw", "--split", "val", "--source-root", str(coco), "--out", str(out),
            "--n", "2", "--seed", str(seed), "--no-progress"]


def test_second_build_is_refused_then_waits_with_overwrite(mini_sources, tmp_path):
    out, gate = tmp_path / "built", tmp_path / "gate"
    gate.mkdir()
    first = subprocess.Popen([sys.executable, "-c", HELD_BUILD, str(gate),
                              *_args(mini_sources["coco"], out, 1)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    third = None
    try:
        _wait_for(gate / "started", first)
        second = subprocess.run([sys.executable, "-m", "builders.cli",
                                 *_args(mini_sources["coco"], out, 2)], cwd=ROOT,
                                capture_output=True, text=True, check=False, timeout=120)
        assert second.returncode == 1, second.stderr
        assert "being written by another process" in second.stderr
        assert f"pid {first.pid}" in second.stderr and "--overwrite" in second.stderr
        third = subprocess.Popen([sys.executable, "-m", "builders.cli",
                                  *_args(mini_sources["coco"], out, 3), "--overwrite"],
                                 cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        time.sleep(2.0)
        assert third.poll() is None, third.communicate()  # waiting, not failing nor sharing
        temps = [p.name for p in (out / "jigsaw").iterdir() if ".tmp-" in p.name]
        assert len(temps) == 1 and temps[0].endswith(f"-{first.pid}"), temps
        (gate / "go").touch()
        _, err1 = first.communicate(timeout=120)
        assert first.returncode == 0, err1
        _, err3 = third.communicate(timeout=120)
        assert third.returncode == 0, err3
        assert "waiting for the other writer" in err3
    finally:
        (gate / "go").touch()
        for proc in (first, third):
            if proc is not None and proc.poll() is None:
                proc.kill()
    path = split_dir(out, "jigsaw", "val")
    assert read_manifest(path)["seed"] == 3 and len(read_split(path)) == 2
    assert sorted(p.name for p in (out / "jigsaw").iterdir()) == ["README.md", "val"]


def test_dedup_is_refused_while_a_build_holds_a_split(mini_sources, tmp_path, capsys):
    out, gate = tmp_path / "built", tmp_path / "gate"
    gate.mkdir()
    for split in ("train", "val", "test"):
        subprocess.run([sys.executable, "-m", "builders.cli", "localization", "--split", split,
                        "--source-root", str(mini_sources["blink" if split == "test" else "coco"]),
                        "--out", str(out), "--n", "2", "--no-progress"], cwd=ROOT, check=True,
                       capture_output=True, timeout=300)
    holder = subprocess.Popen([sys.executable, "-c", HELD_BUILD, str(gate), "localization",
                               "--split", "val", "--source-root", str(mini_sources["coco"]),
                               "--out", str(out), "--n", "2", "--seed", "5", "--overwrite",
                               "--no-progress"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(gate / "started", holder)
        rc = dedup_main(["--against", "blink", "--built", str(out), "--tasks", "localization",
                         "--model", "tiny", "--pretrained", "none", "--device", "cpu",
                         "--no-progress", "--cache", str(tmp_path / "cache")])
        assert rc == 2
        err = capsys.readouterr().err
        assert "being written by another process" in err and f"pid {holder.pid}" in err
    finally:
        (gate / "go").touch()
        holder.communicate(timeout=120)
    assert holder.returncode == 0
    assert not (out / "dedup-blink").exists()
