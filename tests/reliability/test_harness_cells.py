"""Fault injection for harness runs: two processes on one cell (the second skips it, the cell
runs once), a damaged metrics.json / status.json / config.json in one cell (`harness run` and
`harness report` name the file, mark the cell and go on; `--replace` moves it aside and runs it
again; `harness eval` names it), report files replaced atomically."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builders import atomic
from harness.cli import main
from harness.config import load_table
from harness.errors import ConfigError
from harness.executor import OracleExecutor
from harness.plan import plan_cells
from harness.publish import write_reports
from harness.report import build_report
from harness.run_folder import read_cell
from harness.runner import run_cells
from harness.store import DAMAGED, DONE, RunStore
from tests.harness.fakes import write_built

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--table", "3", "--tasks", "localization", "--methods", "zero_shot", "direct_sft",
        "livr"]


@pytest.fixture
def built(tmp_path: Path) -> Path:
    return write_built(tmp_path / "built", ("localization",))


def _cell(runs: Path, method: str) -> Path:
    return runs / "table3" / "qwen3-vl-4b" / "localization" / method


def test_two_processes_on_one_cell_run_it_once(built: Path, tmp_path: Path) -> None:
    runs, race = tmp_path / "runs", tmp_path / "race"
    race.mkdir()
    args = ["run", "--table", "3", "--tasks", "localization", "--methods", "zero_shot",
            "--built", str(built), "--runs", str(runs),
            "--executor", "tests.harness.fakes:racing_executor"]
    code = f"import sys; from harness.cli import main; sys.exit(main({args!r}))"
    env = {**os.environ, "HARNESS_TEST_RACE": str(race)}
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    # Both saw the cell together; it ran once, and the other process said why it did not.
    runners = (race / "runs.log").read_text().split()
    assert len(runners) == 1, outs
    winner = next(p for p in procs if str(p.pid) == runners[0])
    loser_out = outs[1 - procs.index(winner)]
    assert "skipped, another process is running it" in loser_out
    assert f"locked by pid {winner.pid}" in loser_out and "1 running elsewhere" in loser_out
    cell = _cell(runs, "zero_shot")
    status = json.loads((cell / "status.json").read_text())
    assert (status["status"], status["attempts"], status["pid"]) == (DONE, 1, winner.pid)
    # No temporary file left, no lock file left behind.
    assert not [p for p in cell.parent.rglob(".*")], list(cell.parent.rglob(".*"))


def _damage(runs: Path) -> dict[str, Path]:
    """One damaged file in each of the three cells; returns method -> damaged file."""
    metrics = _cell(runs, "zero_shot") / "metrics.json"
    metrics.write_text('{"hash": "abc", "tasks": {"localization": {"accur')  # cut short
    status = _cell(runs, "direct_sft") / "status.json"
    status.write_text(json.dumps({"status": "done", "hash": "x", "attempts": "one"}))  # bad type
    config = _cell(runs, "livr") / "config.json"
    (_cell(runs, "livr") / "status.json").unlink()  # killed before its first status
    config.write_bytes(b"\x80\x81 not json")
    return {"zero_shot": metrics, "direct_sft": status, "livr": config}


def test_a_damaged_cell_file_costs_only_its_cell(built, tmp_path, capsys) -> None:
    runs = tmp_path / "runs"
    base = [*ARGS, "--built", str(built), "--runs", str(runs), "--executor", "oracle"]
    assert main(["run", *base]) == 0
    bad = _damage(runs)
    (built / "counting").mkdir()  # a second task, whose cells are healthy, runs meanwhile
    write_built(built, ("counting",))
    capsys.readouterr()

    code = main(["run", *[a if a != "localization" else "localization,counting" for a in base]])
    out = capsys.readouterr().out
    assert code == 1  # something needs attention
    for path in bad.values():
        assert f"DAMAGED, skipped: {path}" in out
    assert "3 ran" in out and "3 damaged" in out  # the counting cells ran
    assert "not valid JSON" in out and "no valid 'attempts' (int) field" in out
    report = (runs / "table3" / "report" / "report.md").read_text()
    assert report.count("damaged") >= 3 and all(str(p) in report for p in bad.values())

    # --force: the report of the localization cells alone (all damaged) holds fewer results
    # than the one the run wrote (counting's), which `harness report` keeps unless forced
    assert main(["report", *ARGS, "--runs", str(runs)]) == 1
    assert "--force replaces it" in capsys.readouterr().err
    assert main(["report", *ARGS, "--runs", str(runs), "--force"]) == 0
    text = capsys.readouterr().out
    assert "Damaged cells" in text and all(str(p) in text for p in bad.values())

    # eval and diagnose read a run folder through read_cell: the file is named (exit 2)
    with pytest.raises(ConfigError, match=f"{bad['livr']}: not valid JSON"):
        read_cell(bad["livr"].parent)

    # --replace moves the damaged folders aside (kept) and runs the cells again
    assert main(["run", *base, "--replace"]) == 0
    for method, path in bad.items():
        assert path.parent.with_name(f"{method}.replaced-damaged").is_dir()
        assert json.loads((_cell(runs, method) / "status.json").read_text())["status"] == DONE


def test_the_store_marks_damaged_cells_and_runs_the_others(built, tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    table = load_table("3", {"tasks": ["localization"],
                             "methods": ["zero_shot", "direct_sft", "livr"]})
    cells = plan_cells(table, built, {"name": "oracle"})
    run_cells(cells, store, OracleExecutor(), built, lambda _: None)
    bad = _damage(tmp_path / "runs")
    states = {c.key[3]: store.state(c.key) for c in cells}
    assert {m: s.status for m, s in states.items()} == dict.fromkeys(bad, DAMAGED)
    for method, path in bad.items():
        assert states[method].problem.startswith(str(path))
    report = build_report(table, store)
    assert report.problems == tuple(states[m].problem for m in ("zero_shot", "direct_sft", "livr"))


def test_report_files_are_replaced_atomically(built, tmp_path, monkeypatch) -> None:
    store = RunStore(tmp_path / "runs")
    table = load_table("3", {"tasks": ["localization"], "methods": ["zero_shot"]})
    cells = plan_cells(table, built, {"name": "oracle"})
    run_cells(cells, store, OracleExecutor(), built, lambda _: None)
    folder = tmp_path / "report"
    write_reports(build_report(table, store), folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real, calls = os.replace, []

    def killed_at_the_third(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", killed_at_the_third)
    (_cell(tmp_path / "runs", "zero_shot") / "metrics.json").write_text("{")  # report changes
    with pytest.raises(KeyboardInterrupt):
        write_reports(build_report(table, store), folder)
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert set(after) == set(before)  # no temporary file left beside them
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {"report.txt", "report.md"}  # whole new files; the rest whole old ones
    assert b"damaged" in after["report.md"] and b"damaged" not in before["report.md"]
