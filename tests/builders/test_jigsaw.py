"""Jigsaw geometry, checked against the miniature COCO images the examples were cut from."""

from __future__ import annotations

import math

import numpy as np
import pytest

from builders.geometry import intersection
from builders.imaging import decode_bytes, load_image
from builders.registry import get_task

from .conftest import build_split


@pytest.fixture(scope="module")
def records(mini_sources, tmp_path_factory):
    return build_split("jigsaw", "train", mini_sources["coco"], tmp_path_factory.mktemp("jig"), 8)


def _px(img):
    return np.asarray(img, dtype=np.int16)


def test_answer_patch_is_the_blacked_out_quadrant(records, mini_sources):
    p = get_task("jigsaw").params
    for r in records:
        s = r.source_dict
        original = load_image(mini_sources["coco"] / s["image"])
        x0, y0, x1, y1 = s["canvas"]
        assert x1 - x0 == p["canvas_width"]
        assert p["canvas_height_min"] <= y1 - y0 <= p["canvas_height_max"]
        puzzle, opt_a, opt_b = (decode_bytes(b) for b in r.images)
        answer = {"(A)": opt_a, "(B)": opt_b}[r.answer]
        other = opt_b if r.answer == "(A)" else opt_a
        true = s["true_patch"]
        # the answer is the original pixels of the true patch (JPEG-level error only)...
        truth = _px(original.crop(true))
        assert np.abs(_px(answer) - truth).mean() < 3
        assert np.abs(_px(other) - truth).mean() > 10
        # ...and those exact pixels are the hole in image 1: the bottom-right quadrant, black
        hx0, hy0, hx1, hy1 = s["hole_in_image_1"]
        assert (hx0 + x0, hy0 + y0, hx1 + x0, hy1 + y0) == tuple(true)
        assert (hx1, hy1) == puzzle.size and (hx0, hy0) == (puzzle.width // 2, puzzle.height // 2)
        assert _px(puzzle.crop((hx0, hy0, hx1, hy1))).mean() < 3
        rest = _px(puzzle)[: hy0 - 2]
        assert np.abs(rest - _px(original.crop(s["canvas"]))[: hy0 - 2]).mean() < 3
        assert s["options"][r.answer[1]] == true


def test_distractor_rules(records):
    frac = get_task("jigsaw").params["distractor_min_center_frac"]
    for r in records:
        s = r.source_dict
        canvas, true, d = s["canvas"], s["true_patch"], s["distractor_patch"]
        assert (d[2] - d[0], d[3] - d[1]) == (true[2] - true[0], true[3] - true[1])
        assert intersection(d, canvas) > 0
        assert intersection(d, true) == 0
        dist = math.hypot((d[0] + d[2] - true[0] - true[2]) / 2, (d[1] + d[3] - true[1] - true[3]) / 2)
        assert dist >= frac * math.hypot(canvas[2] - canvas[0], canvas[3] - canvas[1])
        W, H = s["image_size"]
        assert 0 <= d[0] and 0 <= d[1] and d[2] <= W and d[3] <= H
