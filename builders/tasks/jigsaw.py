"""Jigsaw from COCO 2017 images (paper A.2).

A 400 x h canvas (h uniform in [170, 230]) is cropped from the image; its bottom-right quadrant is
blacked out in image 1 and is the true answer patch. The distractor is a patch of the same size from
the same image that intersects the canvas, does not overlap the true patch, and whose centre is at
least `distractor_min_center_frac` of the canvas diagonal from the true centre. Each COCO image
(by file stem) belongs to one split. With `helper_images`, the example's Mirage helper is the
puzzle with its true patch pasted back into the hole, i.e. the uncut canvas.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from builders.geometry import intersection
from builders.record import Example
from builders.registry import BuilderParams
from builders.sources import coco

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """Jigsaw's `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    canvas_width: int
    canvas_height_min: int
    canvas_height_max: int
    distractor_min_center_frac: float
    distractor_max_tries: int
    split_fractions: dict[str, float]
    helper_images: bool


def _sample_distractor(rng: np.random.Generator, size: tuple[int, int], canvas, true, p) -> tuple | None:
    W, H = size
    pw, ph = true[2] - true[0], true[3] - true[1]
    cx, cy = (true[0] + true[2]) / 2, (true[1] + true[3]) / 2
    min_dist = p["distractor_min_center_frac"] * math.hypot(canvas[2] - canvas[0], canvas[3] - canvas[1])
    for _ in range(p["distractor_max_tries"]):
        x = int(rng.integers(0, W - pw + 1))
        y = int(rng.integers(0, H - ph + 1))
        box = (x, y, x + pw, y + ph)
        if (intersection(box, canvas) > 0 and intersection(box, true) == 0
                and math.hypot(x + pw / 2 - cx, y + ph / 2 - cy) >= min_dist):
            return box
    return None


def build(ctx: BuildContext) -> Iterator[Example]:
    p = ctx.params
    root = coco.find_root(ctx.source_root)
    images = [im for im in coco.list_images(root) if ctx.owns(im.stem)]
    cw = p["canvas_width"]
    for i in ctx.rng("order").permutation(len(images)):
        item = images[i]
        img = ctx.load_image(item.path)
        if img is None:
            continue
        rng = ctx.rng("example", item.stem)
        h = int(rng.integers(p["canvas_height_min"], p["canvas_height_max"] + 1))
        W, H = img.size
        if W < cw or H < h:
            ctx.reject("image_smaller_than_canvas")
            continue
        x0, y0 = int(rng.integers(0, W - cw + 1)), int(rng.integers(0, H - h + 1))
        canvas = (x0, y0, x0 + cw, y0 + h)
        true = (x0 + cw // 2, y0 + h // 2, x0 + cw, y0 + h)
        distractor = _sample_distractor(rng, (W, H), canvas, true, p)
        if distractor is None:
            ctx.reject("no_valid_distractor")
            continue
        puzzle = img.crop(canvas)
        hole = (true[0] - x0, true[1] - y0, true[2] - x0, true[3] - y0)
        puzzle.paste(Image.new("RGB", (hole[2] - hole[0], hole[3] - hole[1])), hole[:2])
        slot = ctx.answer_slot()
        rects = [distractor, distractor]
        rects[slot] = true
        letters = ctx.spec.letters
        yield Example(
            images=[puzzle, img.crop(rects[0]), img.crop(rects[1])],
            answer=ctx.letter(slot),
            helper=img.crop(canvas) if p["helper_images"] else None,
            source={
                "dataset": "coco",
                "image": item.rel,
                "source_images": [item.rel],
                "image_size": [W, H],
                "canvas": list(canvas),
                "true_patch": list(true),
                "distractor_patch": list(distractor),
                "hole_in_image_1": list(hole),
                "options": {letters[k]: list(r) for k, r in enumerate(rects)},
                "seed": ctx.seed,
            },
        )
