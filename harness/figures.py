"""What every PNG of the harness shares: the headless backend, titles wrapped to the figure's
width, a check that no text falls outside the saved canvas, and saving.

Owns `plt` (pyplot on the Agg backend: no display needed), `wrapped`, `texts_outside` and
`save_figure`. The drawing modules (`harness.plot`, `harness.visualize`) build a figure, and a
test can ask `texts_outside(fig)` before it is saved: a title, label or tick cut off at the edge is
a defect, not a style choice.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: headless machines and tests have no display

import matplotlib.pyplot as plt  # after the backend is chosen

from builders.atomic import atomic_write_bytes

__all__ = ["plt", "save_figure", "texts_outside", "wrapped"]

CHARS_PER_INCH = 13  # of a 9-10 pt title: wrap titles to the figure's width, never cut them


def wrapped(title: str, width_inches: float) -> str:
    """`title` broken into lines that fit a figure `width_inches` wide."""
    width = max(20, int(width_inches * CHARS_PER_INCH))
    return "\n".join(line for part in title.splitlines() for line in textwrap.wrap(part, width))


def texts_outside(fig: plt.Figure) -> list[str]:
    """What of `fig` is drawn past the edge of the saved canvas: titles, axis labels, legends
    (by their text) and tick labels (as "ticks of <axes title>"). Empty when nothing is cut."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox

    def cut(box) -> bool:
        return (box.x0 < canvas.x0 - 1 or box.y0 < canvas.y0 - 1 or box.x1 > canvas.x1 + 1
                or box.y1 > canvas.y1 + 1)

    out = []
    texts = list(fig.texts)  # the suptitle is one of them
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        legend = ax.get_legend()
        if legend is not None and cut(legend.get_window_extent(renderer)):
            out.append("legend: " + ", ".join(t.get_text() for t in legend.get_texts()))
        if ax.axison and cut(ax.get_tightbbox(renderer)):  # drawn tick labels included
            out.append(f"ticks of {ax.get_title() or ax.get_ylabel() or 'an axes'}")
    for text in texts:
        if text.get_visible() and text.get_text().strip() and \
                cut(text.get_window_extent(renderer)):
            out.append(text.get_text())
    return out


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write `fig` as a PNG at `path` atomically (folders made) and free it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, buffer.getvalue())
