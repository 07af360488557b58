"""`harness rescore`: saved raw outputs re-read by the current parser, metrics and reports
rewritten without a model; running and unreadable folders skipped by name; byte-identical reruns;
the parser version (and a judge) recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.config import load_table
from harness.executor import OracleExecutor
from harness.parsing import PARSER_VERSION
from harness.plan import plan_cells
from harness.rescore import load_judge, rescore_folder, rescore_tree, scored_folders
from harness.runner import run_cells
from harness.store import RunStore


def always_b(text: str, letters: str, choices) -> str:
    """A stand-in judge for the tests: answers B whenever it is asked."""
    return "B"


def _store(built: Path, root: Path) -> list[Path]:
    table = load_table("3", {"tasks": ["localization", "counting"], "methods": ["zero_shot"]})
    ex = OracleExecutor()
    cells = plan_cells(table, built, {"name": ex.name, **ex.fingerprint()})
    store = RunStore(root)
    run_cells(cells, store, ex, built, lambda _: None)
    return [store.cell_dir(c.key) for c in cells]


def _age(folder: Path, raw: dict[str, str]) -> None:
    """Make a folder look scored by an older parser: no version, no option texts, answers
    misread, and some raw outputs replaced."""
    rows = [json.loads(x) for x in (folder / "predictions.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("letters", None)
        row.pop("choices", None)
        row["raw"] = raw.get(row["idx"], row["raw"])
        row["parsed"], row["correct"] = None, False
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = json.loads((folder / "metrics.json").read_text())
    for task in metrics["tasks"].values():
        task.pop("parser_version")
        task.pop("judge")
        task["accuracy"] = 0.0
    (folder / "metrics.json").write_text(json.dumps(metrics))


def test_rescore_rereads_and_records_the_version(built: Path, tmp_path: Path):
    loc, count = _store(built, tmp_path / "runs")
    first = json.loads((loc / "predictions.jsonl").read_text().splitlines()[0])
    # Verbose answers the old parser read wrongly (the patterns), in place of two.
    verbose = {first["idx"]: f"{first['gold']} is it. The other box, on the other hand, is "
                             "too large."}
    _age(loc, verbose)
    before = json.loads((loc / "metrics.json").read_text())
    changed = rescore_folder(loc)
    assert changed == 5  # every row was "None" before
    metrics = json.loads((loc / "metrics.json").read_text())
    task = metrics["tasks"]["localization"]
    assert task["accuracy"] == 100.0 and task["parse_failures"] == 0
    assert task["parser_version"] == PARSER_VERSION and task["judge"] is None
    assert metrics["rescored_from"] == [None]
    assert metrics["hash"] == before["hash"] and metrics["executor_info"] == before[
        "executor_info"]
    rows = [json.loads(x) for x in (loc / "predictions.jsonl").read_text().splitlines()]
    assert rows[0]["raw"] == verbose[first["idx"]] and rows[0]["parsed"] == first["gold"]
    assert rows[0]["letters"] == "AB" and rows[0]["choices"] == ["Box A", "Box B"]
    # Rescoring again changes nothing, to the byte.
    files = {p: p.read_bytes() for p in (loc / "predictions.jsonl", loc / "metrics.json")}
    assert rescore_folder(loc) == 0
    assert json.loads((loc / "metrics.json").read_text())["rescored_from"] == [PARSER_VERSION]
    assert (loc / "predictions.jsonl").read_bytes() == files[loc / "predictions.jsonl"]
    assert count.name == "zero_shot"


def test_running_and_unreadable_folders_are_skipped_by_name(built: Path, tmp_path: Path):
    loc, count = _store(built, tmp_path / "runs")
    status = json.loads((loc / "status.json").read_text())
    (loc / "status.json").write_text(json.dumps({**status, "status": "running"}))
    lines = (count / "predictions.jsonl").read_text().splitlines()
    (count / "predictions.jsonl").write_text(lines[0] + "\n{not json\n")
    untouched = (count / "metrics.json").read_bytes()
    summary = rescore_tree([tmp_path / "runs"], log=lambda _: None)
    assert summary.rescored == []
    reasons = dict(summary.skipped)
    assert "running" in reasons[loc]
    assert f"{count / 'predictions.jsonl'}:2 is not valid JSON" in reasons[count]
    assert (count / "metrics.json").read_bytes() == untouched
    assert "2 skipped" in summary.describe()


def test_judge_is_asked_only_for_unreadable_answers(built: Path, tmp_path: Path):
    loc, _ = _store(built, tmp_path / "runs")
    rows = [json.loads(x) for x in (loc / "predictions.jsonl").read_text().splitlines()]
    _age(loc, {rows[0]["idx"]: "Hard to tell from here.", rows[1]["idx"]: "(A)"})
    judge = load_judge("tests.harness.test_rescore:always_b")
    rescore_folder(loc, judge, "tests.harness.test_rescore:always_b")
    after = [json.loads(x) for x in (loc / "predictions.jsonl").read_text().splitlines()]
    assert after[0]["parsed"] == "(B)" and after[1]["parsed"] == "(A)"
    task = json.loads((loc / "metrics.json").read_text())["tasks"]["localization"]
    assert task["judge"] == "tests.harness.test_rescore:always_b"


@pytest.mark.parametrize(("target", "message"), [
    ("nomodule_xyz:f", "no module 'nomodule_xyz' is importable"),
    ("tests.harness.test_rescore:missing", "has no function 'missing'"),
    ("justaname", "takes MODULE:FUNCTION"),
])
def test_bad_judges_are_named(target: str, message: str):
    with pytest.raises(Exception, match=message):
        load_judge(target)


def test_cli_rescores_a_table_and_its_report(built: Path, tmp_path: Path, capsys):
    runs = tmp_path / "runs"
    loc, _ = _store(built, runs)
    _age(loc, {})
    assert main(["rescore", "3", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "2 folder(s) rescored with parser version" in out
    report = (runs / "table3" / "report" / "report.txt").read_text()
    assert f"Answers parsed by harness.parsing version {PARSER_VERSION}." in report
    assert sorted(scored_folders(runs)) == sorted([loc, loc.parent.parent / "counting" /
                                                   "zero_shot"])
    assert main(["rescore", "nosuchtable", "--runs", str(runs)]) == 2
    assert "unknown table 'nosuchtable'" in capsys.readouterr().err
