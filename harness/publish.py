"""A table's report on disk: every format written, and never an emptier one than was there.

Owns `publish_table` (what `harness run`, `report`, `rescore` and the demo do after the cells:
build the report from the run store, refuse to replace a report with one holding fewer results
unless forced, write it, print it), `write_reports` (report.{txt,md,csv,tex,json} and chart.png,
each written atomically), `replacement_refusal`, `results_in` and `stored_results`. The renderers
are `harness.report`'s and the chart `harness.plot`'s.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from builders.atomic import atomic_write_text
from harness.config import TableConfig
from harness.report import (
    MEAN,
    TableReport,
    build_report,
    render_csv,
    render_json,
    render_latex,
    render_markdown,
    render_text,
)
from harness.store import RunStore


def publish_table(table: TableConfig, runs: Path, force: bool = False) -> int:
    """Print and write `table`'s report from the run store `runs`; 1 (nothing written, the
    reason on stderr) when it would hold no result, or fewer than the report already there and
    not `force`; else 0."""
    store = RunStore(runs)
    report = build_report(table, store)
    failures = build_report(table, store, metric="parse_failure_rate")
    folder = runs / table.name / "report"
    refusal = replacement_refusal(report, folder, force)
    if refusal:
        print(f"harness report: {refusal}", file=sys.stderr)
        return 1
    paths = write_reports(report, folder, extra=[failures])
    print(render_text(report, color=sys.stdout.isatty()))
    print(f"report: {', '.join(str(p) for p in paths)}")
    return 0


def results_in(doc: Mapping[str, Any]) -> int:
    """How many task results (ours, method rows, Mean excluded) a report holds, given its JSON
    form (`render_json`, or `dataclasses.asdict` of a `TableReport`)."""
    return sum(
        1 for block in doc.get("blocks", ()) for row in block.get("rows", ())
        if row.get("kind") == "method"
        for column, value in row.get("values", {}).items()
        if column != MEAN and isinstance(value, Mapping) and value.get("ours") is not None
    )


def stored_results(folder: Path) -> int | None:
    """`results_in` of the report.json in `folder`; None when there is none or it is unreadable
    (then nothing is lost by writing a new one)."""
    try:
        doc = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return results_in(doc) if isinstance(doc, dict) else None


def replacement_refusal(report: TableReport, folder: Path, force: bool = False) -> str | None:
    """Why `report` must not be written to `folder`: it holds no result at all, or (unless
    `force`) fewer than the report already there. None when writing it loses nothing."""
    new = results_in(asdict(report))
    if new == 0 and not report.problems:  # damaged cells are worth a report: it names them
        return f"nothing to report: no finished cell of {report.table} holds a result"
    old = stored_results(folder)
    if not force and old is not None and new < old:
        return (f"not replacing {folder / 'report.json'}: it holds {old} results, this report "
                f"{new} (--force replaces it)")
    return None


def write_reports(
    report: TableReport, folder: Path, extra: Sequence[TableReport] = ()
) -> list[Path]:
    """report.{txt,md,csv,tex,json} and chart.png under `folder`; returns the paths."""
    from harness.plot import plot_report  # matplotlib: only when a report is written

    folder.mkdir(parents=True, exist_ok=True)
    outputs = {
        "report.txt": render_text(report) + "".join("\n" + render_text(e) for e in extra),
        "report.md": render_markdown(report, extra),
        "report.csv": render_csv(report),
        "report.tex": render_latex(report),
        "report.json": render_json(report),
    }
    paths = [atomic_write_text(folder / name, text) for name, text in outputs.items()]
    paths.append(plot_report(report, folder / "chart.png"))
    return paths
