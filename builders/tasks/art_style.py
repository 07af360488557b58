"""Art Style from ArtBench-10 (paper A.5).

Pool: the images of ArtBench's `source_split` (its train split), style-balanced by capping every
style at the smallest style's count. Which images survive the cap is drawn with the shared
(split-independent) rng, so the pool is one and the same whichever of our splits is built; each
pool image then belongs to one of our splits by the hash of its relative path (`ctx.owns`). Owned
images cut by the cap are counted as `style_balance_cap`.

Examples: a reference painting, a positive of the same style (another image) and a negative of
another style; the positive is option A or B by `ctx.answer_slot()`. Each image is used at most
once. Styles are drawn in proportion to their unused images so that usage stays balanced as the
pool drains. Images are used as-is (nothing is drawn on them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from builders.record import Example
from builders.registry import BuilderParams
from builders.sources import artbench
from builders.sources.artbench import ArtImage

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """Art Style's `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    source_split: str
    split_fractions: dict[str, float]


def balance(by_style: dict[str, list[ArtImage]], ctx: BuildContext) -> dict[str, list[ArtImage]]:
    """The style-balanced pool: every style capped at the smallest style's count, the kept images
    drawn per style with the shared rng and listed in their original (sorted) order."""
    cap = min(len(images) for images in by_style.values())
    pool = {}
    for style, images in by_style.items():
        keep = np.sort(ctx.shared_rng("pool", style).permutation(len(images))[:cap])
        pool[style] = [images[i] for i in keep]
    return pool


def _take(queue: list[ArtImage], ctx: BuildContext) -> tuple[ArtImage, Image.Image] | None:
    """The next readable image of a style queue (unreadable ones are counted and skipped)."""
    while queue:
        item = queue.pop()
        img = ctx.load_image(item.path)
        if img is not None:
            return item, img
    return None


def _draw_style(rng: np.random.Generator, styles: list[str], weights: np.ndarray) -> str:
    return styles[int(rng.choice(len(styles), p=weights / weights.sum()))]


def build(ctx: BuildContext) -> Iterator[Example]:
    root = artbench.find_root(ctx.source_root)
    by_style = artbench.list_images(root, ctx.params["source_split"])
    kept = {im.rel for images in balance(by_style, ctx).values() for im in images}
    queues: dict[str, list[ArtImage]] = {}
    for style, images in by_style.items():
        owned = [im for im in images if ctx.owns(im.rel)]
        ctx.reject("style_balance_cap", sum(im.rel not in kept for im in owned))
        mine = [im for im in owned if im.rel in kept]
        queues[style] = [mine[i] for i in ctx.rng("queue", style).permutation(len(mine))]
    styles = sorted(queues)
    rng = ctx.rng("triplets")
    letters = ctx.spec.letters
    while True:
        left = np.array([len(queues[s]) for s in styles], dtype=np.float64)
        ref_weights = np.where(left >= 2, left, 0.0)
        if not ref_weights.any():
            return
        style = _draw_style(rng, styles, ref_weights)
        neg_weights = np.where(np.array(styles) == style, 0.0, left)
        if not neg_weights.any():
            return
        neg_style = _draw_style(rng, styles, neg_weights)
        ref, pos = _take(queues[style], ctx), _take(queues[style], ctx)
        neg = _take(queues[neg_style], ctx)
        if ref is None or pos is None or neg is None:
            ctx.reject("style_ran_out_after_unreadable")
            continue
        slot = ctx.answer_slot()
        options = [neg, neg]
        options[slot] = pos
        yield Example(
            images=[ref[1], options[0][1], options[1][1]],
            answer=ctx.letter(slot),
            source={
                "dataset": "artbench",
                "source_split": ctx.params["source_split"],
                "source_images": [ref[0].rel, options[0][0].rel, options[1][0].rel],
                "reference": {"path": ref[0].rel, "style": ref[0].style},
                "options": {
                    letters[k]: {"path": item.rel, "style": item.style}
                    for k, (item, _) in enumerate(options)
                },
                "positive": letters[slot],
                "seed": ctx.seed,
            },
        )
