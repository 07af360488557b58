"""`harness demo --quick` end to end: every step succeeds with a live status line, no log holds
error text, learning is visible in Table 1 (both trained methods far above chance and zero-shot
on Count), the diagnostics are written and explained, and every output exists.

What the quick size asserts: learning in the table (measured at the quick size: direct SFT 57.8%
and LIVR 44.4% on 45 Count test examples, chance 11.1%, zero-shot 0%) and the diagnostics'
no-image condition (answers pixel-invariant). It does not assert that the latents carry the
image under the bottleneck mask: with a third of the data LIVR's first stage stays on its loss
plateau (bottleneck 11.1%); the full size (`harness demo`: 64%, chance 11.1%) is where it shows.
About a minute on 2 CPU cores.
"""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest

from harness import demo
from harness.config import load_table

# What counts as error text in a log: tracebacks (a logging handler writing to a closed file
# printed "--- Logging error ---" and a traceback), and error lines of any tool.
ERROR_TEXT = re.compile(r"Traceback|Logging error|\bError\b|\bERROR\b|Exception")
MARGIN = 15.0  # points above chance and zero-shot that make learning "clearly" visible


# 35-55 s on 2 idle cores (the whole quick demo), shared by the tests marked slow; CI runs them
@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "livr-demo"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = demo.main(["--out", str(out), "--quick"])
    return {"rc": rc, "out": out, "printed": printed.getvalue()}


def _values(out, method: str) -> dict:
    report = json.loads((out / "runs" / "table1" / "report" / "report.json").read_text())
    rows = [r for b in report["blocks"] for r in b["rows"]]
    row = next(r for r in rows if r["method"] == method or r["label"] == method)
    return {task: v["ours"] for task, v in row["values"].items()}


@pytest.mark.slow
def test_every_step_succeeds_with_a_live_status(ran):
    assert ran["rc"] == 0, ran["printed"]
    for step in demo.STEPS:
        assert f"] {step}: ok" in ran["printed"], ran["printed"]
    # The table step (tens of seconds) printed status lines with an ETA while it ran.
    status = [x for x in ran["printed"].splitlines() if x.startswith("  table1: ")]
    assert status and all("elapsed" in x for x in status), ran["printed"]
    assert any("left" in x or "longer than estimated" in x for x in status)
    assert any("stage" in x for x in status)  # the shards' training progress


@pytest.mark.slow
def test_no_log_holds_error_text(ran):
    logs = sorted((ran["out"] / "logs").glob("*.log"))
    assert [p.stem for p in logs] == sorted(demo.STEPS)
    for log in logs:
        text = log.read_text()
        assert text.strip(), f"{log.name} is empty"
        found = ERROR_TEXT.search(text)
        assert found is None, f"{log.name}: {text[max(0, found.start() - 200):found.end() + 200]}"
    # The table step's log holds both shards' cells and their training.
    table = (ran["out"] / "logs" / "table1.log").read_text()
    assert "[shard 0]" in table and "[shard 1]" in table and "done: counting" in table


@pytest.mark.slow
def test_learning_is_visible_in_table_1(ran):
    out = ran["out"]
    chance = _values(out, "Random choice")["counting"]
    constant = _values(out, "Best constant answer")["counting"]
    zero_shot = _values(out, "zero_shot")["counting"]
    floor = max(chance, constant, zero_shot)
    for method in ("direct_sft", "livr"):
        got = _values(out, method)["counting"]
        assert got >= floor + MARGIN, (method, got, floor, ran["printed"])
    trained = [json.loads(p.read_text())["method"] for p in
               (out / "runs" / "table1").glob("*/*/*/config.json")]
    assert len(trained) == 3 * len(demo.TABLE_TASKS)  # zero-shot, direct SFT, LIVR
    assert {m["lr"] for m in trained if m["finetune"] != "none"} == {demo.QUICK.lr}


@pytest.mark.slow
def test_the_table_is_printed_as_text_and_explained(ran):
    printed = ran["printed"]
    assert "Table 1: single-task accuracy (%)" in printed
    assert "Marks: * best, + second best" in printed and "*0.00*" not in printed
    assert "in parentheses" not in printed  # a tiny backbone has no paper numbers
    assert "What these numbers mean:" in printed and "What they do not mean:" in printed
    assert demo.WHY_TASKS in printed
    assert printed.count("TINY RANDOM-INITIALISED model") == 2
    for name in ("table1.md", "table1.png", "table1.txt", "README.md"):
        assert (ran["out"] / name).stat().st_size > 0, name
    assert "What these numbers mean:" in (ran["out"] / "README.md").read_text()


@pytest.mark.slow
def test_splits_dedup_and_diagnostics_are_written(ran):
    out = ran["out"]
    nine = set(load_table("1").tasks)  # `build-task all` builds the other tasks' splits too
    assert nine <= {p.parent.parent.parent.name
                    for p in (out / "built").glob("*/test/.livr/manifest.json")}
    for against in ("blink", "pixmo"):
        assert (out / "built" / f"dedup-{against}" / "summary.json").is_file()
        assert "Thresholds in force" in (out / "built" / f"dedup-{against}" / "index.html"
                                         ).read_text()
    diagnostics = json.loads((out / "diagnostics" / "diagnostics.json").read_text())
    accuracy = {k: v["macro"] for k, v in diagnostics["accuracy"].items()}
    assert set(accuracy) == {"standard", "no_latents", "bottleneck", "bottleneck_no_latents"}
    # Nothing sees the image under the bottleneck without latents: pixel-invariant answers.
    invariance = diagnostics["pixel_invariance"]
    assert invariance["identical_answers"] == invariance["examples"] > 0
    assert (out / "diagnostics" / "tsne.png").is_file()
    assert "Bottleneck diagnostics (Count, LIVR)" in ran["printed"]


def test_a_non_empty_folder_is_refused(tmp_path, capsys):
    (tmp_path / "data.txt").write_text("keep me")
    assert demo.main(["--out", str(tmp_path), "--quick"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert demo.main(["--out", str(tmp_path), "--quick", "--fresh"]) == 2  # not a demo folder
    assert (tmp_path / "data.txt").read_text() == "keep me"
