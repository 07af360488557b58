"""The diagnostics' pictures (paper Sec. 4.5, App. C): attention overlays and a t-SNE plot.

Owns `save_overlay` (latent-to-image attention maps drawn over the input images) and `save_tsne`
(final-layer hidden states of latent / image / text positions in 2-D). Both write PNGs with
matplotlib's Agg backend (no display needed). The numbers come from `harness.diagnose`; this
module only draws them.

An attention map is on the image's token grid (Qwen: one token per 2x2 merge of 14/16-px patches
of the image as the processor resized it); it is stretched over the whole picture with bilinear
interpolation, which matches the grid up to the processor's rounding to whole patches (LLaVA-style
processors centre-crop first, so there the map covers the central square). Each panel is scaled
to its own maximum, and the colour bar gives the raw attention weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from harness.figures import plt, save_figure, wrapped

KIND_COLOURS = {"latent": "tab:red", "image": "tab:blue", "text": "tab:green"}
def _stretched(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`grid` [rows, cols] resized to `size` (width, height) with bilinear interpolation."""
    return np.asarray(Image.fromarray(grid.astype(np.float32), mode="F").resize(
        size, Image.Resampling.BILINEAR
    ))


def save_overlay(
    images: Sequence[Image.Image], maps: Sequence[np.ndarray], path: Path, title: str
) -> Path:
    """One panel per image: the image with its latent-to-image attention map on top."""
    return save_figure(overlay_figure(images, maps, title), path)


def overlay_figure(
    images: Sequence[Image.Image], maps: Sequence[np.ndarray], title: str
) -> plt.Figure:
    """The figure `save_overlay` writes."""
    if len(images) != len(maps):
        raise ValueError(f"{len(images)} images but {len(maps)} attention maps")
    width = max(3.6 * len(images), 4.5)
    fig, axes = plt.subplots(1, len(images), figsize=(width, 3.8), squeeze=False,
                             layout="constrained")  # keeps titles and colour bars inside
    for i, (ax, image, grid) in enumerate(zip(axes[0], images, maps), start=1):
        ax.imshow(image)
        heat = ax.imshow(
            _stretched(grid, image.size), cmap="inferno", alpha=0.55,
            vmin=0.0, vmax=max(float(grid.max()), 1e-12),
        )
        ax.set_title(f"image {i}: {grid.shape[0]}x{grid.shape[1]} tokens", fontsize=8)
        ax.axis("off")
        bar = fig.colorbar(heat, ax=ax, fraction=0.046, pad=0.02)
        bar.set_label("attention weight", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    fig.suptitle(wrapped(title, width), fontsize=9)
    return fig


def tsne_embedding(features: np.ndarray, seed: int) -> np.ndarray:
    """2-D t-SNE of `features` [n, d] (scikit-learn; perplexity capped for small n)."""
    from sklearn.manifold import TSNE  # only the diagnostics need scikit-learn

    perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3)))
    return TSNE(
        n_components=2, perplexity=perplexity, init="pca", random_state=seed
    ).fit_transform(features.astype(np.float32))


def save_tsne(
    features: np.ndarray, kinds: Sequence[str], path: Path, title: str, seed: int = 0
) -> Path:
    """Scatter of the t-SNE of `features`, one colour per kind (latent / image / text)."""
    return save_figure(tsne_figure(tsne_embedding(features, seed), kinds, title), path)


def tsne_figure(points: np.ndarray, kinds: Sequence[str], title: str) -> plt.Figure:
    """The figure `save_tsne` writes, from the 2-D points."""
    kinds_array = np.asarray(kinds)
    fig, ax = plt.subplots(figsize=(5.5, 5.0), layout="constrained")
    for kind, colour in KIND_COLOURS.items():
        chosen = kinds_array == kind
        if chosen.any():
            ax.scatter(points[chosen, 0], points[chosen, 1], s=6, c=colour, alpha=0.6,
                       label=f"{kind} ({int(chosen.sum())})")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=8, markerscale=2)
    ax.set_title(wrapped(title, 5.5), fontsize=9)
    return fig
