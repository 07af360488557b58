"""PNG bar charts (matplotlib, Agg backend: no display needed): table reports and the mechanism
check.

Owns `plot_report` and `plot_mechanism`. `plot_report`: one panel per block (backbone x section), one group of bars per column
(tasks and Mean), one bar per method row with our accuracy; the paper's number, where it has one,
is a black tick across the bar. Baseline and Delta rows are not drawn; random choice is a dashed
line per task.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # before pyplot: headless machines and tests have no display

import matplotlib.pyplot as plt

from builders.atomic import atomic_write_bytes
from harness.names import backbone_label
from harness.report import TableReport

if TYPE_CHECKING:
    from harness.mechanism import MechanismResult


def _save(fig: plt.Figure, path: Path) -> Path:
    """Write `fig` as a PNG atomically (a killed run never leaves half a chart) and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def plot_report(report: TableReport, path: Path) -> Path:
    panels = [b for b in report.blocks if b.backbone is not None]
    baselines = next((b for b in report.blocks if b.backbone is None), None)
    columns = report.columns
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(max(6.0, 1.1 * len(columns)) + 2.5, 3.2 * len(panels) + 0.6),
        squeeze=False,
    )
    for ax, block in zip(axes[:, 0], panels):
        rows = [r for r in block.rows if r.kind == "method"]
        width = 0.8 / max(1, len(rows))
        for i, row in enumerate(rows):
            xs = [c + (i - (len(rows) - 1) / 2) * width for c in range(len(columns))]
            ours = [row.values[c].ours or 0.0 for c in columns]
            ax.bar(xs, ours, width, label=row.label)
            for x, c in zip(xs, columns):
                paper = row.values[c].paper
                if paper is not None:
                    ax.hlines(paper, x - width / 2, x + width / 2, colors="black", linewidth=1.5)
        if baselines is not None:
            rand = baselines.rows[0]
            for c, col in enumerate(columns):
                if rand.values[col].ours is not None:
                    ax.hlines(rand.values[col].ours, c - 0.45, c + 0.45, colors="grey",
                              linestyles="dashed", linewidth=1)
        title = backbone_label(block.backbone or "")
        ax.set_title(f"{title} {block.section}".strip(), fontsize=10)
        ax.set_xticks(range(len(columns)), [report.column_label(c) for c in columns],
                      fontsize=8)
        ax.set_ylabel(report.metric.replace("_", " ") + " (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside, not on, bars
    fig.suptitle(f"{report.title}\nblack tick: the paper's number; dashed: random choice",
                 fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, path)


def plot_mechanism(result: MechanismResult, path: Path) -> Path:
    """Bottleneck-at-test accuracy per seed and the mean, LIVR beside latents only; hollow bars
    are the same runs with the causal mask; chance and the two thresholds as lines."""
    seeds = [str(s) for s in result.seeds] + ["mean"]
    fig, ax = plt.subplots(figsize=(1.3 * len(seeds) + 3.5, 3.6))
    width = 0.38
    for i, (name, label, colour) in enumerate((("livr", "LIVR", "tab:blue"),
                                               ("latents_only", "latents only", "tab:orange"))):
        runs = result.of(name)
        bottleneck = [r.bottleneck_accuracy for r in runs] + [result.mean_bottleneck(name)]
        causal = [r.causal_accuracy for r in runs]
        causal.append(sum(causal) / len(causal))
        xs = [x + (i - 0.5) * width for x in range(len(seeds))]
        ax.bar(xs, causal, width, fill=False, edgecolor=colour, linestyle="dotted",
               label=f"{label}, causal mask")
        ax.bar(xs, bottleneck, width, color=colour, label=f"{label}, bottleneck at test")
    thresholds = result.thresholds
    ax.axhline(result.chance, color="grey", linestyle="dashed", linewidth=1, label="chance")
    ax.axhline(thresholds["livr_mean_bottleneck_min"], color="tab:blue", linewidth=0.8,
               linestyle="dashdot", label="LIVR mean must reach")
    ax.axhline(thresholds["latents_only_mean_bottleneck_max"], color="tab:orange",
               linewidth=0.8, linestyle="dashdot", label="latents-only mean must stay under")
    ax.set_xticks(range(len(seeds)), [f"seed {s}" if s != "mean" else s for s in seeds])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    verdict = "PASS" if result.passed else "FAIL"
    ax.set_title(f"Mechanism check ({result.config.backbone}, K={result.config.latents}): "
                 f"{verdict}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, path)
