"""The PNG bar chart of a table report (matplotlib, Agg backend: no display needed).

Owns `report_figure` / `plot_report` (the mechanism check draws its own, `harness.mechanism`). A
report chart
has one panel per block (backbone x section), one group of bars per column (tasks and Mean), one
bar per method row with our value; the paper's number, where it has one, is a black tick across
the bar. Baseline and Delta rows are not drawn; random choice is a dashed line per task. The
footer names only what is drawn (no tick promised on a chart without paper numbers).
"""

from __future__ import annotations

from pathlib import Path

from harness.figures import plt, save_figure, wrapped
from harness.names import backbone_label
from harness.report import TableReport


def plot_report(report: TableReport, path: Path) -> Path:
    return save_figure(report_figure(report), path)


def report_figure(report: TableReport) -> plt.Figure:
    """The chart `plot_report` writes."""
    panels = [b for b in report.blocks if b.backbone is not None]
    baselines = next((b for b in report.blocks if b.backbone is None), None)
    columns = report.columns
    width = max(6.0, 1.1 * len(columns)) + 2.5
    fig, axes = plt.subplots(len(panels), 1, figsize=(width, 3.2 * len(panels) + 0.9),
                             squeeze=False, layout="constrained")
    ticks = dashes = False
    for ax, block in zip(axes[:, 0], panels):
        rows = [r for r in block.rows if r.kind == "method"]
        bar = 0.8 / max(1, len(rows))
        for i, row in enumerate(rows):
            xs = [c + (i - (len(rows) - 1) / 2) * bar for c in range(len(columns))]
            ours = [row.values[c].ours or 0.0 for c in columns]
            ax.bar(xs, ours, bar, label=row.label)
            for x, c in zip(xs, columns):
                paper = row.values[c].paper
                if paper is not None:
                    ax.hlines(paper, x - bar / 2, x + bar / 2, colors="black", linewidth=1.5)
                    ticks = True
        if baselines is not None:
            rand = baselines.rows[0]
            for c, col in enumerate(columns):
                if rand.values[col].ours is not None:
                    ax.hlines(rand.values[col].ours, c - 0.45, c + 0.45, colors="grey",
                              linestyles="dashed", linewidth=1)
                    dashes = True
        title = backbone_label(block.backbone or "")
        ax.set_title(f"{title} {block.section}".strip(), fontsize=10)
        ax.set_xticks(range(len(columns)), [report.column_label(c) for c in columns],
                      fontsize=8)
        ax.set_ylabel(report.metric.replace("_", " ") + " (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside, not on, bars
    keys = ["bars: ours"] + (["black tick: the paper's number"] if ticks else []) \
        + (["dashed: random choice"] if dashes else [])
    fig.suptitle(wrapped(f"{report.title}\n{'; '.join(keys)}", width), fontsize=9)
    return fig
