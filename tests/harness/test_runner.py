"""Running cells against a run store: outputs per cell, skip when done, crash isolation, resume
after a kill (in-process and a real SIGKILL), live cells left alone, config conflicts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.config import load_table
from harness.executor import CellData, CellFolder, CellResult, ConstantExecutor, OracleExecutor
from harness.plan import plan_cells
from harness.runner import check_conflicts, run_cells
from harness.store import (
    CONFLICT,
    DONE,
    FAILED,
    INTERRUPTED,
    NEW,
    RUNNING,
    ConfigConflict,
    RunStore,
)
from tests.harness.fakes import CrashingExecutor, Killed, KillingExecutor

REPO = Path(__file__).resolve().parents[2]


def _cells(built: Path, executor=None, **overrides):
    table = load_table("3", {"methods": ["zero_shot", "direct_sft", "livr"], **overrides})
    ex = executor or OracleExecutor()
    return plan_cells(table, built, {"name": ex.name, **ex.fingerprint()})


def _quiet(_: str) -> None:
    pass


def _status(store: RunStore, cells) -> dict[str, str]:
    return {"/".join(c.key[2:]): store.status_of(c.config) for c in cells}


def test_cell_outputs(built: Path, tmp_path: Path):
    store = RunStore(tmp_path / "runs")
    cells = _cells(built, tasks=["localization", "counting"])
    summary = run_cells(cells, store, OracleExecutor(), built, _quiet)
    assert len(summary.ran) == 6 and not summary.failed
    folder = tmp_path / "runs" / "table3" / "qwen3-vl-4b" / "counting" / "livr"
    assert {p.name for p in folder.iterdir()} >= {
        "config.json", "status.json", "metrics.json", "predictions.jsonl", "checkpoints"}
    config = json.loads((folder / "config.json").read_text())
    assert config["hash"] == cells[-1].hash and config["method"]["epochs"] == [4, 6]
    lines = [json.loads(x) for x in (folder / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 5
    assert lines[0] == {"idx": "livr_test_Counting_1", "task": "counting", "raw": "There are 3 objects.",
                        "parsed": "3", "gold": "3", "correct": True}
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["tasks"]["counting"]["accuracy"] == 100.0 and metrics["n"] == 5


def test_finished_cells_are_skipped(built: Path, tmp_path: Path):
    store = RunStore(tmp_path / "runs")
    cells = _cells(built, tasks=["localization"])
    run_cells(cells, store, OracleExecutor(), built, _quiet)
    executor = CrashingExecutor()
    summary = run_cells(cells, store, executor, built, _quiet)
    assert executor.calls == [] and len(summary.skipped) == 3


def test_constant_executor_scores_the_constant_baseline(built: Path, tmp_path: Path):
    store = RunStore(tmp_path / "runs")
    ex = ConstantExecutor(letter="B")
    cells = _cells(built, ex, tasks=["localization"], methods=["zero_shot"])
    run_cells(cells, store, ex, built, _quiet)
    m = store.load_metrics(cells[0].key)["tasks"]["localization"]
    assert m["pred_hist"] == {"(B)": 5}
    assert m["accuracy"] == m["constant_baseline"] == 60.0  # gold B, A, B, A, B


def test_crash_is_recorded_and_does_not_stop_other_cells(built: Path, tmp_path: Path):
    store = RunStore(tmp_path / "runs")
    cells = _cells(built)
    crashing = CrashingExecutor({("semantic_correspondence", "direct_sft")})
    summary = run_cells(cells, store, crashing, built, _quiet)
    assert [k[2:] for k, _ in summary.failed] == [("semantic_correspondence", "direct_sft")]
    assert "boom in semantic_correspondence/direct_sft" in summary.failed[0][1]
    assert len(summary.ran) == 8
    failed = store.cell_dir(("table3", "qwen3-vl-4b", "semantic_correspondence", "direct_sft"))
    assert "RuntimeError: boom" in (failed / "error.txt").read_text()
    assert not (failed / "metrics.json").exists()
    assert store.status_of(cells[4].config) == FAILED

    # The re-run retries only the failed cell, in the same folder, resuming from its checkpoints.
    fixed = CrashingExecutor()
    summary = run_cells(cells, store, fixed, built, _quiet)
    assert fixed.calls == [("qwen3-vl-4b", "semantic_correspondence", "direct_sft", True)]
    assert len(summary.skipped) == 8 and not summary.failed
    assert (failed / "checkpoints" / "attempt1").exists()
    assert (failed / "error-attempt1.txt").exists() and not (failed / "error.txt").exists()
    assert json.loads((failed / "status.json").read_text())["attempts"] == 2
    assert set(_status(store, cells).values()) == {DONE}


def test_resume_after_a_killed_cell(built: Path, tmp_path: Path):
    store = RunStore(tmp_path / "runs")
    cells = _cells(built)
    killer = KillingExecutor({("semantic_correspondence", "zero_shot")})
    with pytest.raises(Killed):
        run_cells(cells, store, killer, built, _quiet)
    statuses = _status(store, cells)
    assert list(statuses.values()) == [DONE] * 3 + [INTERRUPTED] + [NEW] * 5
    # On disk the cell still says "running": the process died without a word.
    killed = store.cell_dir(cells[3].key)
    assert json.loads((killed / "status.json").read_text())["status"] == RUNNING

    resumer = CrashingExecutor()
    run_cells(cells, store, resumer, built, _quiet)
    # The killed cell resumes (its checkpoints intact); the five never started run fresh.
    assert [c[1:] for c in resumer.calls] == [
        ("semantic_correspondence", "zero_shot", True),
        ("semantic_correspondence", "direct_sft", False),
        ("semantic_correspondence", "livr", False),
        ("functional_correspondence", "zero_shot", False),
        ("functional_correspondence", "direct_sft", False),
        ("functional_correspondence", "livr", False),
    ]
    assert (killed / "checkpoints" / "epoch1").exists()
    assert set(_status(store, cells).values()) == {DONE}


def test_real_sigkill_then_resume(built: Path, tmp_path: Path, monkeypatch):
    runs = tmp_path / "runs"
    args = ["run", "--table", "3", "--tasks", "localization", "--methods", "zero_shot",
            "direct_sft", "livr", "--built", str(built), "--runs", str(runs),
            "--executor", "tests.harness.fakes:sigkill_executor"]
    code = f"import sys; from harness.cli import main; sys.exit(main({args!r}))"
    env = {**os.environ, "HARNESS_TEST_KILL_IN": "direct_sft"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == -9, proc.stderr
    cell = runs / "table3" / "qwen3-vl-4b" / "localization"
    assert json.loads((cell / "zero_shot" / "status.json").read_text())["status"] == DONE
    assert json.loads((cell / "direct_sft" / "status.json").read_text())["status"] == RUNNING
    assert not (cell / "livr").exists()  # never started

    from harness.cli import main

    monkeypatch.delenv("HARNESS_TEST_KILL_IN", raising=False)
    assert main(args) == 0
    status = json.loads((cell / "direct_sft" / "status.json").read_text())
    assert (status["status"], status["attempts"], status["previous"]) == (DONE, 2, RUNNING)
    assert (cell / "direct_sft" / "checkpoints" / "partial").exists()
    assert json.loads((cell / "livr" / "status.json").read_text())["attempts"] == 1
    assert json.loads((cell / "zero_shot" / "status.json").read_text())["attempts"] == 1


def _fake_running(store: RunStore, cell, host: str, pid: int, heartbeat_age: float) -> None:
    folder = store.begin(cell.config)
    status = json.loads((folder.root / "status.json").read_text())
    status.update(host=host, pid=pid)
    (folder.root / "status.json").write_text(json.dumps(status))
    beat = folder.root / "heartbeat"
    beat.touch()
    old = time.time() - heartbeat_age
    os.utime(beat, (old, old))


def test_live_cells_are_left_alone(built: Path, tmp_path: Path):
    store = RunStore(tmp_path / "runs", stale_after_s=600)
    cells = _cells(built, tasks=["localization"])
    here = socket.gethostname()
    _fake_running(store, cells[0], here, os.getppid(), 0)  # this host, a live process
    _fake_running(store, cells[1], "other-node", 1, 10)  # another host, fresh heartbeat
    _fake_running(store, cells[2], "other-node", 1, 3600)  # another host, heartbeat stale
    assert list(_status(store, cells).values()) == [RUNNING, RUNNING, INTERRUPTED]
    executor = CrashingExecutor()
    summary = run_cells(cells, store, executor, built, _quiet)
    assert [k[3] for k in summary.busy] == ["zero_shot", "direct_sft"]
    assert [c[2:] for c in executor.calls] == [("livr", True)]


def test_changed_config_is_a_conflict_not_a_reuse(built: Path, tmp_path: Path):
    store = RunStore(tmp_path / "runs")
    cells = _cells(built, tasks=["localization"])
    run_cells(cells, store, OracleExecutor(), built, _quiet)
    changed = _cells(built, tasks=["localization"], epochs=5)
    assert list(_status(store, changed).values()) == [DONE, CONFLICT, CONFLICT]  # zero-shot same
    with pytest.raises(ConfigConflict) as err:
        check_conflicts(changed, store, replace=False)
    assert "localization/livr" in str(err.value) and '"epochs": [4, 6]' in str(err.value)
    with pytest.raises(ConfigConflict):
        store.begin(changed[2].config)  # the store refuses too, whoever calls it

    moved = check_conflicts(changed, store, replace=True)
    assert sorted(p.name for p in moved) == sorted(
        f"{c.key[3]}.replaced-{c.hash}" for c in cells[1:])
    assert all((p / "metrics.json").exists() for p in moved)  # old results kept, not deleted
    summary = run_cells(changed, store, OracleExecutor(), built, _quiet)
    assert len(summary.ran) == 2 and len(summary.skipped) == 1


class _Partial(OracleExecutor):
    """Answers only the first test record; or returns an id that is not in the test set."""

    def __init__(self, bogus: bool = False) -> None:
        self.bogus = bogus

    def run(self, cell, data: CellData, folder: CellFolder) -> CellResult:
        first = data.test()[0]
        return CellResult({"nope" if self.bogus else first.idx: "The answer is " + first.answer},
                          {"note": "partial"})


def test_missing_outputs_are_scored_wrong_and_unknown_ids_fail_the_cell(built, tmp_path):
    store = RunStore(tmp_path / "runs")
    cells = _cells(built, tasks=["localization"], methods=["zero_shot"])
    run_cells(cells, store, _Partial(), built, _quiet)
    metrics = store.load_metrics(cells[0].key)
    m = metrics["tasks"]["localization"]
    assert (m["n"], m["correct"], m["missing"], m["parse_failures"]) == (5, 1, 4, 4)
    assert metrics["executor_info"] == {"note": "partial"}

    store2 = RunStore(tmp_path / "runs2")
    summary = run_cells(cells, store2, _Partial(bogus=True), built, _quiet)
    assert "not in the test set" in summary.failed[0][1]


def test_cell_data_applies_limits(built: Path):
    cells = _cells(built, tasks=["localization"], limit=2)
    data = CellData(built, cells[2].config)
    assert [len(data.train()), len(data.val()), len(data.test())] == [2, 2, 2]
    texts = {r.idx: r.answer for r in data.val()}
    assert data.val_accuracy(texts) == 100.0
    assert data.val_accuracy({}) == 0.0  # missing answers are wrong
