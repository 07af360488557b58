"""Small geometry shared by builders: boxes, IoU, homographies, point sampling."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


def xywh_to_xyxy(b: Sequence[float]) -> Box:
    x, y, w, h = (float(v) for v in b)
    return (x, y, x + w, y + h)


def box_area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def intersection(a: Box, b: Box) -> float:
    return box_area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def iou(a: Box, b: Box) -> float:
    inter = intersection(a, b)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def warp_points(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to (N, 2) pixel coordinates (x = column, y = row)."""
    pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    hom = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ np.asarray(H, dtype=np.float64).T
    return hom[:, :2] / hom[:, 2:3]


def inside(pt: Sequence[float], width: int, height: int, margin: float = 0.0) -> bool:
    x, y = float(pt[0]), float(pt[1])
    return margin <= x <= width - 1 - margin and margin <= y <= height - 1 - margin


def sample_separated_points(
    rng: np.random.Generator,
    k: int,
    width: int,
    height: int,
    margin: float,
    min_dist: float,
    avoid: Sequence[Sequence[float]] = (),
    max_tries: int = 200,
) -> list[tuple[float, float]]:
    """Up to k points inside the margin, pairwise >= min_dist apart and from every `avoid` point.

    Rejection sampling with a bounded number of tries; returns fewer than k when space runs out.
    """
    chosen: list[tuple[float, float]] = []
    taken = [tuple(map(float, a)) for a in avoid]
    lo_x, hi_x = margin, width - 1 - margin
    lo_y, hi_y = margin, height - 1 - margin
    if hi_x <= lo_x or hi_y <= lo_y:
        return chosen
    for _ in range(max_tries):
        if len(chosen) == k:
            break
        p = (float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y)))
        if all(np.hypot(p[0] - q[0], p[1] - q[1]) >= min_dist for q in taken + chosen):
            chosen.append(p)
    return chosen
