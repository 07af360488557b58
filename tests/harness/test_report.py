"""Reports: rendering compared EXACTLY with golden files made from fixed fake metrics (regenerate
with UPDATE_GOLDEN=1 after an intended change, and review the diff), plus the rules behind them:
best/second styling, Delta rows, the paper's Mean only over the paper's task set, the chart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builders.registry import LETTERS, load_registry
from harness.cells import CellConfig
from harness.config import TableConfig, load_table
from harness.items import Scored, macro_mean
from harness.metrics import task_metrics
from harness.publish import write_reports
from harness.report import (
    build_report,
    render_csv,
    render_json,
    render_latex,
    render_markdown,
    render_text,
)
from harness.store import RunStore

GOLDEN = Path(__file__).parent / "golden"
N = 20
# Correct answers out of N per method (plus the task's position), so rows differ and tie.
CORRECT = {"zero_shot": 11, "direct_sft": 15, "livr": 17, "latents_only": 15, "mask_only": 16,
           "image_twice": 14, "prompt_tuning": 12, "livr_mask_answer_only": 14,
           "livr_mask_latent_no_prompt": 16, "livr_s2_8": 15, "livr_s6_4": 16, "livr_s8_2": 13,
           "livr_k4": 16, "livr_k8": 15, "livr_k32": 14, "livr_latents_before_prompt": 15,
           "livr_shared": 16}
FAILED = {("functional_correspondence", "prompt_tuning")}  # a crashed cell
NOT_RUN = {("semantic_correspondence", "image_twice")}  # a cell not run yet


def _scored(task: str, correct: int) -> list[Scored]:
    spec = load_registry().resolve(task)
    out = []
    for i in range(N):
        if spec.answer_type == "mcq":
            gold = f"({LETTERS[i % spec.num_options]})"
            wrong = f"({LETTERS[(i + 1) % spec.num_options]})"
        else:
            gold, wrong = str(2 + i % 9), str(3 + i % 9)
        parsed = gold if i < correct else (None if i % 5 == 0 else wrong)
        out.append(Scored(f"{task}_{i}", task, parsed or "???", parsed, gold, parsed == gold))
    return out


def fake_store(root: Path, table: TableConfig) -> RunStore:
    """A run store holding fixed metrics for every cell of `table` (one failed, one not run)."""
    store = RunStore(root)
    for backbone in table.backbones:
        for cell_task in table.cell_tasks():
            for name, method in table.methods.items():
                eval_tasks = table.tasks if table.training == "mixture" else (cell_task,)
                config = CellConfig(table.name, backbone, cell_task, method,
                                    eval_tasks if method.trained else (), eval_tasks)
                if (cell_task, name) in NOT_RUN:
                    continue
                store.begin(config)
                if (cell_task, name) in FAILED:
                    store.fail(config, "Traceback (most recent call last):\nRuntimeError: x\n")
                    continue
                per_task = {}
                for k, task in enumerate(eval_tasks):
                    spec = load_registry().resolve(task)
                    per_task[task] = task_metrics(_scored(task, CORRECT[name] - k % 3), spec)
                store.finish(config, [], {
                    "hash": config.hash,
                    "tasks": {t: m.to_json() for t, m in per_task.items()},
                    "macro_mean": macro_mean(m.accuracy for m in per_task.values()),
                })
    return store


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, f"{name} differs from its golden file"


@pytest.fixture
def table3_report(tmp_path: Path):
    table = load_table("3")
    store = fake_store(tmp_path / "runs", table)
    return build_report(table, store), build_report(table, store, "parse_failure_rate")


@pytest.mark.parametrize(("suffix", "render"), [
    ("txt", lambda r, f: render_text(r)),
    ("md", lambda r, f: render_markdown(r, [f])),
    ("csv", lambda r, f: render_csv(r)),
    ("tex", lambda r, f: render_latex(r)),
    ("json", lambda r, f: render_json(r)),
])
def test_table3_matches_golden(table3_report, suffix, render):
    _check_golden(f"table3.{suffix}", render(*table3_report))


@pytest.mark.parametrize("name", ["2", "4"])
def test_sectioned_and_mixture_tables_match_golden(tmp_path: Path, name: str):
    table = load_table(name)
    report = build_report(table, fake_store(tmp_path / "runs", table))
    _check_golden(f"table{name}.md", render_markdown(report))


def test_styles_delta_and_statuses(table3_report):
    report, _ = table3_report
    block = report.blocks[1]
    rows = {r.label: r for r in block.rows}
    loc = {label: r.values["localization"] for label, r in rows.items()}
    assert loc["LIVR"].style == "best" and loc["LIVR"].ours == 85.0
    assert loc["Mask only"].style == "second"
    assert loc["Direct SFT"].style == loc["Latents only"].style == ""
    delta = rows["Delta vs SFT"].values["localization"]
    assert delta.ours == pytest.approx(10.0) and delta.paper == pytest.approx(83.61 - 79.51)
    assert delta.style == ""  # Delta rows are never ranked
    assert rows["Prompt tuning"].values["functional_correspondence"].status == "failed"
    assert rows["Prompt tuning"].values["mean"].ours is None  # no mean over a missing task
    assert rows["Image twice"].values["semantic_correspondence"].status == "new"
    baselines = {r.label: r for r in report.blocks[0].rows}
    assert baselines["Random choice"].values["semantic_correspondence"].ours == 25.0
    assert report.n == {"localization": "20", "semantic_correspondence": "20",
                        "functional_correspondence": "20"}


def test_paper_mean_only_over_the_paper_task_set(tmp_path: Path):
    full = load_table("1", {"backbones": ["qwen3-vl-4b"], "methods": ["livr"]})
    part = load_table("1", {"backbones": ["qwen3-vl-4b"], "methods": ["livr"],
                            "tasks": ["localization"]})
    store = RunStore(tmp_path / "empty")
    assert build_report(full, store).blocks[1].rows[0].values["mean"].paper == 77.55
    row = build_report(part, store).blocks[1].rows[0]
    assert row.values["localization"].paper == 83.61 and row.values["mean"].paper is None
    tiny = load_table("1", {"backbones": ["tiny-qwen3-vl"], "methods": ["livr"]})
    assert build_report(tiny, store).blocks[1].rows[0].values["localization"].paper is None


def test_color_text_and_written_files(tmp_path: Path, table3_report):
    report, failures = table3_report
    colored = render_text(report, color=True)
    assert "\x1b[1m85.00*\x1b[0m" in colored and "\x1b[4m" in colored
    paths = write_reports(report, tmp_path / "out", [failures])
    assert sorted(p.name for p in paths) == [
        "chart.png", "report.csv", "report.json", "report.md", "report.tex", "report.txt"]
    assert (tmp_path / "out" / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_terminal_text_marks_titles_and_footers(tmp_path: Path, table3_report):
    report, failures = table3_report
    text = render_text(report)
    assert "*85.00*" not in text and "_80.00_" not in text  # no Markdown emphasis markers
    assert "85.00* (83.61)" in text and "80.00+ (80.33)" in text
    assert "Marks: * best, + second best" in text
    assert "in parentheses: the paper's number" in text
    # The parse-failure table is titled by its metric and carries no marks or paper numbers.
    rates = render_text(failures)
    assert rates.startswith("Table 3: ablations of LIVR's components, parse failures (% of test "
                            "answers)\n")
    assert "accuracy" not in rates and "Marks:" not in rates and "parentheses" not in rates
    # A backbone without paper numbers: the footer does not promise them.
    tiny = load_table("3", {"backbones": ["tiny-qwen3-vl"]})
    tiny_text = render_text(build_report(tiny, fake_store(tmp_path / "tiny", tiny)))
    assert "Values: accuracy (%); Delta rows in percentage points.\n" in tiny_text
    assert "parentheses" not in tiny_text and "Marks: * best" in tiny_text
