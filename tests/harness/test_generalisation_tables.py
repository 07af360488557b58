"""`harness run --table spatial` and `--table broad`: the transfer training mode (one model on the
train set, evaluated on every benchmark), reported rows with the paper's numbers, and both tables
end to end on the tiny backbone from miniature sources, as CI runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builders import miniature
from builders.cli import main as build_task
from harness.cli import main as harness
from harness.config import load_table
from harness.errors import ConfigError
from harness.plan import plan_cells
from harness.report import build_report, render_csv, render_json, render_text
from harness.store import RunStore

pytestmark = pytest.mark.usefixtures("single_thread")

SOURCES = ("sat", "blink", "blink_configs", "robospatial", "mmvp", "vstar", "visualcot")
SIZES = {"sat": {"train": 6, "val": 2, "test": 4}, "visualcot": {"train": 6},
         **{t: {"test": 4} for t in ("blink3", "robospatial", "mmvp", "vstar", "blink5")}}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The generalisation tasks' splits built from their miniatures with `build-task`."""
    root = tmp_path_factory.mktemp("generalisation")
    for source in SOURCES:
        miniature.write(source, root / "sources")
    for task, splits in SIZES.items():
        for split, n in splits.items():
            assert build_task([task, "--split", split, "--source-root", str(root / "sources"),
                               "--out", str(root / "built"), "--n", str(n),
                               "--no-progress"]) == 0
    return root / "built"


def test_transfer_tables_train_on_the_train_set_and_evaluate_every_benchmark(built):
    table = load_table("spatial")
    assert (table.training, table.train_set, table.cell_tasks()) == ("transfer", "sat", ("sat",))
    assert list(table.methods) == ["zero_shot", "direct_sft", "livr"]
    assert list(table.reported) == ["vanilla_grpo", "text_cot_grpo", "vigorl"]
    cells = {c.key[3]: c for c in plan_cells(table, built, {"name": "oracle"})}
    assert set(cells) == {"zero_shot", "direct_sft", "livr"}
    livr, zs = cells["livr"], cells["zero_shot"]
    assert livr.config.train_tasks == ("sat",) and zs.config.train_tasks == ()
    assert livr.config.eval_tasks == zs.config.eval_tasks == ("sat", "blink3", "robospatial")
    # best checkpoint: SAT-32k's val split after every epoch; 3 benchmarks x 4 test questions
    assert (livr.cost.train_examples, livr.cost.val_examples, livr.cost.test_examples) == (6, 2, 12)
    broad = load_table("broad")
    assert broad.backbones == ("qwen2.5-vl-7b",) and broad.train_set == "visualcot"
    assert [c.config.checkpoint for c in plan_cells(broad, built, {"name": "oracle"})] == [
        "none", "final"]


TOML = """title = "t"
training = "{training}"
backbones = ["qwen2.5-vl-3b"]
tasks = ["blink3"]
{extra}
[reported]
{reported}
[[sections]]
rows = [["zero_shot", "ZS"], {rows}]
"""


@pytest.mark.parametrize(("training", "extra", "reported", "rows", "error"), [
    ("transfer", 'train_set = "sat"', "", "", "needs `train_set`.*and `train_set_source`"),
    ("single", 'train_set = "sat"', "", "", "only for, training = \"transfer\""),
    ("transfer", 'train_set = "mmvp"\ntrain_set_source = "x"', "", "", "has no train split"),
    ("single", "", 'livr = "x"', "", "'livr' is a method this toolkit runs"),
    ("single", 'paper = "spatial"', 'grpo = "x"', '["grpo", "G"]', "no 'spatial' row 'grpo'"),
    ("single", 'paper = "spatial"', 'vigorl = "x"', "", "vigorl appear in no section"),
])
def test_table_errors_name_the_fix(tmp_path, training, extra, reported, rows, error):
    path = tmp_path / "t.toml"
    path.write_text(TOML.format(training=training, extra=extra, reported=reported, rows=rows))
    with pytest.raises(ConfigError, match=error):
        load_table(str(path))


def test_reported_rows_print_the_papers_numbers_beside_ours(built, tmp_path):
    runs = tmp_path / "runs"
    assert harness(["run", "--table", "spatial", "--built", str(built), "--runs", str(runs),
                    "--executor", "oracle"]) == 0
    table = load_table("spatial")
    report = build_report(table, RunStore(runs))
    text = render_text(report)
    assert "100.00* (85.60)" in next(x for x in text.splitlines() if "LIVR-3B" in x)
    grpo = next(x for x in text.splitlines() if "Vanilla GRPO" in x).split()
    assert grpo[-7:] == ["reported", "(50.00)", "reported", "(46.50)", "reported", "(69.70)",
                         "-"]
    text_cot = next(x for x in text.splitlines() if "Text-CoT" in x)
    assert text_cot.split()[-2:] == ["-", "-"]  # no RoboSpatial number in the paper, no mean
    assert "Trained on: SAT-32k as ViGoRL samples it" in text
    assert "  ViGoRL-3B: ViGoRL Table 2 (ViGoRL-3B), quoted by LIVR Table 3" in text
    csv_rows = [r.split(",") for r in render_csv(report).splitlines()]
    assert [r[2] for r in csv_rows if r[4] == "reported"] == [
        "+ Vanilla GRPO", "Text-CoT (SFT+GRPO)", "ViGoRL-3B"]
    assert json.loads(render_json(report))["notes"][0].startswith("Trained on: SAT-32k")
    # the random baseline of per-question options is the cells' measured chance
    metrics = RunStore(runs).load_metrics(("spatial", "qwen2.5-vl-3b", "sat", "zero_shot"))
    random_row = next(x for x in text.splitlines() if "Random choice" in x).split()
    sat_chance = metrics["tasks"]["sat"]["random_baseline"]
    assert random_row[2] == f"{sat_chance:.2f}" and 0 < sat_chance < 100
    assert set(metrics["tasks"]["sat"]["benchmark"]) == {
        "by_sub_task", "sub_task_macro_mean", "vigorl_string_match"}
    assert set(metrics["tasks"]["robospatial"]["benchmark"]) >= {
        "robospatial_vqa_avg", "robospatial_startswith"}


def test_both_tables_run_end_to_end_on_the_tiny_backbone(built, tmp_path):
    runs = tmp_path / "runs"
    for table, tasks in (("spatial", ("sat", "blink3", "robospatial")),
                         ("broad", ("mmvp", "vstar", "blink5"))):
        rc = harness(["run", "--table", table, "--backbones", "tiny-qwen2.5-vl", "--built",
                      str(built), "--runs", str(runs), "--limit", "2", "--epochs", "2",
                      "--executor", "livr", "--executor-opt", "device=cpu",
                      "--executor-opt", "progress=false"])
        assert rc == 0
        report = (runs / table / "report" / "report.txt").read_text()
        assert all(label in report for label in ("Trained on:", "reported:"))
        store = RunStore(runs)
        cell = "sat" if table == "spatial" else "visualcot"
        metrics = store.load_metrics((table, "tiny-qwen2.5-vl", cell, "livr"))
        assert set(metrics["tasks"]) == set(tasks)
        assert all(metrics["tasks"][t]["n"] == 2 for t in tasks)
        config = json.loads((store.cell_dir((table, "tiny-qwen2.5-vl", cell, "livr"))
                             / "config.json").read_text())
        assert config["train_tasks"] == [cell] and config["eval_tasks"] == list(tasks)
    mmvp = RunStore(runs).load_metrics(("broad", "tiny-qwen2.5-vl", "visualcot", "livr"))
    assert mmvp["tasks"]["mmvp"]["benchmark"]["pairs"] == 1
