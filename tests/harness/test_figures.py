"""Every PNG of the harness keeps its titles, labels and ticks on the canvas, and says only what
it draws (no paper tick promised where no paper number is drawn)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.config import load_table
from harness.figures import plt, texts_outside, wrapped
from harness.mechanism import MechanismConfig, MechanismResult, MethodResult, mechanism_figure
from harness.plot import report_figure
from harness.report import build_report
from harness.visualize import overlay_figure, tsne_figure
from tests.harness.test_report import fake_store

LONG_ID = "val_Semantic_Correspondence_1234_with_a_long_suffix"


def _checked(fig: plt.Figure) -> list[str]:
    try:
        return texts_outside(fig)
    finally:
        plt.close(fig)


def test_a_cut_title_is_detected():
    """The check can fail: a title far wider than its figure is reported."""
    fig, _ = plt.subplots(figsize=(3, 2), layout="constrained")
    fig.suptitle("x" * 200)
    assert _checked(fig) == ["x" * 200]


@pytest.mark.parametrize("n_images", [1, 2, 4])
def test_attention_overlays_keep_every_text_inside(n_images):
    images = [Image.new("RGB", (64 + 32 * i, 48), (i * 40, 80, 120)) for i in range(n_images)]
    maps = [np.random.default_rng(i).random((3, 4)) for i in range(n_images)]
    title = f"{LONG_ID}: latent-to-image attention (heads, layers, latents averaged)"
    fig = overlay_figure(images, maps, title)
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == ["attention weight"] * n_images  # every colour bar says what it measures
    assert _checked(fig) == []


def test_tsne_keeps_its_two_line_title_inside():
    points = np.random.default_rng(0).normal(size=(30, 2))
    kinds = ["latent", "image", "text"] * 10
    title = ("t-SNE of final-layer hidden states, first 50 examples of each of 6 tasks\n"
             "Qwen3-VL-4B, LIVR (K=16, 4+6 epochs, bottleneck mask answer+prompt->vision)")
    assert _checked(tsne_figure(points, kinds, title)) == []
    assert wrapped(title, 5.5).count("\n") >= 2  # wrapped, not cut


def _report(tmp_path: Path, table: str, backbones=None):
    config = load_table(table)
    if backbones:
        from dataclasses import replace

        config = replace(config, backbones=backbones)
    return build_report(config, fake_store(tmp_path / "runs", config))


def test_report_chart_with_paper_numbers_names_the_tick(tmp_path):
    fig = report_figure(_report(tmp_path, "3"))
    title = fig.get_suptitle()
    assert "black tick: the paper's number" in title
    assert _checked(fig) == []


def test_report_chart_without_paper_numbers_promises_no_tick(tmp_path):
    fig = report_figure(_report(tmp_path, "1", ("tiny-qwen2.5-vl",)))
    title = fig.get_suptitle()
    assert "tick" not in title and "bars: ours" in title
    assert _checked(fig) == []


def test_mechanism_chart_keeps_every_text_inside():
    runs = [MethodResult(m, s, (6, 4), 90.0 - s, 100.0, {}, [], 0.0)
            for m in ("livr", "latents_only") for s in range(3)]
    fig = mechanism_figure(MechanismResult(MechanismConfig(), (0, 1, 2), runs, 0.0))
    assert _checked(fig) == []
