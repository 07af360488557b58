"""Markers scale with the image and labels keep clear of other rings."""

from __future__ import annotations

import numpy as np
from PIL import Image

from builders.drawing import MarkerStyle, draw_boxes, draw_points


def _red(img: Image.Image) -> np.ndarray:
    a = np.asarray(img, dtype=np.int16)
    return (a[..., 0] > 200) & (a[..., 1] < 60) & (a[..., 2] < 60)


def test_marker_sizes_scale_with_the_image():
    small, large = MarkerStyle.for_image((256, 256)), MarkerStyle.for_image((1500, 1000))
    assert large.radius >= 5 * small.radius // 2 and large.font_size > 2 * small.font_size
    for size in ((256, 256), (1500, 1000)):
        img = draw_points(Image.new("RGB", size, (40, 40, 40)), {"A": (size[0] / 2, size[1] / 2)})
        style = MarkerStyle.for_image(size)
        red = _red(img)
        ys, xs = np.nonzero(red[:, : size[0] // 2 + style.radius + style.width])
        # the ring spans its diameter (the letter sits beside it, not inside)
        assert xs.max() - xs.min() >= 2 * style.radius - 2


def test_labels_avoid_neighbouring_rings():
    pts = {"A": (100.0, 100.0), "B": (118.0, 88.0), "C": (108.0, 118.0), "D": (60.0, 60.0)}
    base = Image.new("RGB", (300, 200), (90, 90, 90))
    rings_only = draw_points(base, {k: v for k, v in pts.items()})
    style = MarkerStyle.for_image(base.size)
    pad = style.radius + style.width
    # every ring keeps most of its red outline visible: no label was written over it
    for k, (x, y) in pts.items():
        ring = _red(rings_only)[int(y - pad): int(y + pad) + 1, int(x - pad): int(x + pad) + 1]
        alone = _red(draw_points(base, {k: (x, y)}))[int(y - pad): int(y + pad) + 1, int(x - pad): int(x + pad) + 1]
        assert (ring & alone).sum() >= 0.75 * alone.sum(), k


def test_boxes_are_drawn_at_their_coordinates():
    img = draw_boxes(Image.new("RGB", (400, 300), (30, 30, 30)), {"A": (50, 40, 250, 200)})
    red = _red(img)
    assert red[120, 49:52].any() and red[120, 249:252].any() and not red[120, 100:200].any()
