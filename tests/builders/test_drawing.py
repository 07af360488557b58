"""Markers scale with the image and labels keep clear of other rings."""

from __future__ import annotations

import numpy as np
from PIL import Image

from builders.drawing import MarkerStyle, _overlap, draw_boxes, draw_points, label_boxes


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
        _, xs = np.nonzero(red[:, : size[0] // 2 + style.radius + style.width])
        # the ring spans its diameter (the letter sits beside it, not inside)
        assert xs.max() - xs.min() >= 2 * style.radius - 2


def test_labels_avoid_neighbouring_rings():
    # B sits exactly where A's default (upper-right) label would go
    pts = {"A": (100.0, 100.0), "B": (118.0, 88.0), "C": (108.0, 118.0), "D": (60.0, 60.0)}
    size = (300, 200)
    style = MarkerStyle.for_image(size)
    boxes = label_boxes(size, pts, style)
    pad = style.radius + style.width
    for label, box in boxes.items():
        for other, (x, y) in pts.items():
            if other != label:
                assert _overlap(box, (x - pad, y - pad, x + pad, y + pad)) == 0, (label, other)
        for other, obox in boxes.items():
            if other != label:
                assert _overlap(box, obox) == 0, (label, other)
        x, y = pts[label]
        # the label stays next to its own ring
        assert abs((box[0] + box[2]) / 2 - x) < 4 * pad and abs((box[1] + box[3]) / 2 - y) < 4 * pad


def test_boxes_are_drawn_at_their_coordinates():
    img = draw_boxes(Image.new("RGB", (400, 300), (30, 30, 30)), {"A": (50, 40, 250, 200)})
    red = _red(img)
    assert red[120, 49:52].any() and red[120, 249:252].any() and not red[120, 100:200].any()
