"""`harness demo --quick` end to end: every step succeeds, every output exists, and the
disclaimer that the numbers come from a tiny random-initialised model is printed.

About two minutes on 2 CPU cores (nine tasks x zero-shot / direct SFT / LIVR on a tiny backbone).
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from harness import demo
from harness.config import load_table


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "livr-demo"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = demo.main(["--out", str(out), "--quick"])
    return {"rc": rc, "out": out, "printed": printed.getvalue()}


def test_every_step_succeeds(ran):
    assert ran["rc"] == 0, ran["printed"]
    for step in ("sources", "build", "dedup-blink", "dedup-pixmo", "table1", "diagnose"):
        assert f"] {step}: ok" in ran["printed"], ran["printed"]


def test_the_disclaimer_is_printed_before_and_after(ran):
    printed = ran["printed"]
    assert printed.count("TINY RANDOM-INITIALISED model") == 2
    assert "says nothing about LIVR's accuracy" in printed
    assert "README.md" in printed


def test_table_1_is_printed_and_written(ran):
    out = ran["out"]
    assert "Table 1" in ran["printed"]
    for name in ("table1.md", "table1.png", "table1.txt"):
        assert (out / name).stat().st_size > 0, name
    markdown = (out / "table1.md").read_text()
    for label in ("Zero-shot", "Direct SFT", "LIVR", "Count", "VisSim"):
        assert label in markdown
    report = json.loads((out / "runs" / "table1" / "report" / "report.json").read_text())
    assert report  # every format of the harness's report is there
    assert "TINY RANDOM-INITIALISED" in (out / "README.md").read_text()
    trained = [json.loads(p.read_text())["method"] for p in
               (out / "runs" / "table1").glob("*/*/*/config.json")]
    assert len(trained) == 27  # nine tasks x zero-shot / direct SFT / LIVR
    assert {m["lr"] for m in trained if m["finetune"] != "none"} == {demo.QUICK.lr}


def test_splits_dedup_and_diagnostics_are_written(ran):
    out = ran["out"]
    nine = set(load_table("1").tasks)  # `build-task all` builds the other tasks' splits too
    assert nine <= {p.parent.parent.parent.name
                    for p in (out / "built").glob("*/test/.livr/manifest.json")}
    for against in ("blink", "pixmo"):
        assert (out / "built" / f"dedup-{against}" / "summary.json").is_file()
    diagnostics = json.loads((out / "diagnostics" / "diagnostics.json").read_text())
    assert set(diagnostics["accuracy"]) == {"standard", "no_latents", "bottleneck",
                                            "bottleneck_no_latents"}
    assert (out / "diagnostics" / "tsne.png").is_file()
    assert "Diagnostics:" in ran["printed"]


def test_a_non_empty_folder_is_refused(tmp_path, capsys):
    (tmp_path / "data.txt").write_text("keep me")
    assert demo.main(["--out", str(tmp_path), "--quick"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert demo.main(["--out", str(tmp_path), "--quick", "--fresh"]) == 2  # not a demo folder
    assert (tmp_path / "data.txt").read_text() == "keep me"
