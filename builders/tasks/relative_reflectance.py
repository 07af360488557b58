"""Relative Reflectance from MID train scenes and their albedo (paper A.8, PROTOCOL.md section 2).

The pool is every (scene, light direction) pair of the MID train scenes this split owns; one
example per pair: the direction's sRGB JPEG with two points drawn on it, labelled A and B, and the
answer read from the scene's albedo (shared by its 25 directions). Rules and where they live:

- MID test scenes (names starting with `test_scene_prefix`, "everett") are never used; they are
  counted once per scene as `test_scene` (`_usable_scenes`).
- Our train/val split is by scene (`ctx.owns(scene name)`), so every image of a scene, and its
  albedo, is in one split. A scene without albedo is counted once as `no_albedo`; a second folder
  with an already seen scene name as `duplicate_scene_folder` (the first in sorted order is used).
- The albedo is linear RGB (`sources.mid.read_albedo`: EXR as is, PNG through the
  `albedo_png_is_srgb` flag). Luminance Y = w . RGB with `luminance_weights` (Rec. 709). When the
  albedo's size differs from the image's, Y is resized to the image size (area averaging when
  shrinking, bilinear when enlarging; resizing Y equals resizing RGB since Y is linear), so the
  points, the disks and the drawing share the image's pixel grid; `albedo_points` in the
  provenance gives the same points on the albedo's own grid (pixel centres scaled). An albedo
  whose aspect ratio differs from the image's by more than `albedo_aspect_tolerance` is not the
  scene's and is counted once as `albedo_aspect_mismatch`; an undecodable one as
  `unreadable_albedo`.
- Points: two points from `geometry.sample_separated_points`, at least `border_margin_frac` and
  `min_separation_frac` of min(W, H) from the border and from each other (x = column, y = row,
  pixel centres at integers: the rendered image is the JPEG at its own resolution).
- Y_A, Y_B: mean Y over the pixels whose centres lie within r = max(disk_radius_frac * min(W, H),
  min_disk_radius_px) of the point (clipped to the image). rel = |Y_A - Y_B| / max(Y_A, Y_B,
  rel_epsilon); rel <= same_threshold -> (C) "About the same", else the darker point's letter.
- Class mix: each example's target class comes from a seeded schedule of shuffled blocks of
  `schedule_block` targets holding round(same_fraction * block) C's and the rest split evenly
  between A and B (`_ClassSchedule`); a target is used up only when an example is yielded. Point
  pairs are drawn up to `max_pair_tries` times until the pair's class (same or not) matches the
  target; for A/B the darker point is then labelled with the target letter. A pair that cannot be
  found is counted as `no_same_pair` / `no_darker_pair` (`no_separated_points` when the image
  has no room for two points). So C is `same_fraction` of the split, exact at every multiple of
  the block, and A and B are balanced.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from builders.drawing import draw_points
from builders.geometry import sample_separated_points
from builders.imaging import UnreadableImage
from builders.record import Example
from builders.registry import BuilderParams
from builders.sources import mid

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """Relative Reflectance's `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    same_threshold: float
    same_fraction: float
    mip: int
    num_directions: int
    test_scene_prefix: str
    disk_radius_frac: float
    min_separation_frac: float
    border_margin_frac: float
    min_disk_radius_px: float
    rel_epsilon: float
    luminance_weights: tuple[float, float, float]
    albedo_png_is_srgb: bool
    albedo_aspect_tolerance: float
    schedule_block: int
    max_pair_tries: int
    split_fractions: dict[str, float]

A, B, SAME = 0, 1, 2  # option indices: (A) A is darker, (B) B is darker, (C) About the same


class _ClassSchedule:
    """Target option indices from shuffled blocks: round(same_fraction * block) SAME, the rest
    split between A and B (a coin decides the odd one)."""

    def __init__(self, rng: np.random.Generator, block: int, same_fraction: float) -> None:
        self._rng = rng
        n_same = round(same_fraction * block)
        if block < 1 or not 0 <= n_same <= block:
            raise ValueError(f"schedule_block {block} cannot hold same_fraction {same_fraction}")
        self._n_same, self._n_rest = n_same, block - n_same
        self._queue: list[int] = []

    def peek(self) -> int:
        if not self._queue:
            n_a = self._n_rest // 2 + (self._n_rest % 2) * int(self._rng.integers(2))
            block = [SAME] * self._n_same + [A] * n_a + [B] * (self._n_rest - n_a)
            self._queue = [block[i] for i in self._rng.permutation(len(block))]
        return self._queue[-1]

    def pop(self) -> None:
        self._queue.pop()


def luminance(rgb: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Per-pixel luminance of linear RGB (H, W, 3) -> float32 (H, W)."""
    return np.asarray(rgb, dtype=np.float32) @ np.asarray(weights, dtype=np.float32)


def resize_to(y: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`y` (H, W) resampled to `size` = (W, H): area averaging to shrink, bilinear otherwise."""
    w, h = size
    if y.shape == (h, w):
        return y
    interp = cv2.INTER_AREA if y.shape[0] * y.shape[1] > w * h else cv2.INTER_LINEAR
    return cv2.resize(y, (w, h), interpolation=interp)


def disk_mean(y: np.ndarray, xy: Sequence[float], radius: float) -> float:
    """Mean of `y` over the pixels whose centres are within `radius` of xy = (x, y)."""
    h, w = y.shape
    x, yy = float(xy[0]), float(xy[1])
    x0, x1 = max(0, math.ceil(x - radius)), min(w - 1, math.floor(x + radius))
    y0, y1 = max(0, math.ceil(yy - radius)), min(h - 1, math.floor(yy + radius))
    cols, rows = np.meshgrid(np.arange(x0, x1 + 1), np.arange(y0, y1 + 1))
    inside = (cols - x) ** 2 + (rows - yy) ** 2 <= radius**2
    return float(y[y0 : y1 + 1, x0 : x1 + 1][inside].mean(dtype=np.float64))


def relative_difference(y_a: float, y_b: float, eps: float) -> float:
    return abs(y_a - y_b) / max(y_a, y_b, eps)


def _usable_scenes(ctx: BuildContext, scenes: list[mid.Scene]) -> list[mid.Scene]:
    """This split's train scenes with an albedo, one folder per scene name."""
    out, seen = [], set()
    for scene in scenes:
        if scene.name in seen:
            ctx.reject("duplicate_scene_folder")
            continue
        seen.add(scene.name)
        if scene.name.startswith(ctx.params["test_scene_prefix"]):
            ctx.reject("test_scene")
        elif not ctx.owns(scene.name):
            continue
        elif scene.albedo is None:
            ctx.reject("no_albedo")
        else:
            out.append(scene)
    return out


class _SceneLuminance:
    """The albedo luminance of a scene at an image size. Keeps the last scene's (examples come
    in random order, so a larger cache rarely hits) and remembers bad albedos so each is counted
    once per scene."""

    def __init__(self, ctx: BuildContext) -> None:
        self._ctx = ctx
        self._key: tuple | None = None
        self._value: tuple[np.ndarray, tuple[int, int]] | None = None
        self.bad: set[str] = set()

    def __call__(self, scene: mid.Scene, size: tuple[int, int]) -> tuple | None:
        """(Y at `size`, the albedo's own (W, H)), or None for a bad albedo."""
        key = (scene.name, size)
        if key == self._key:
            return self._value
        p = self._ctx.params
        try:
            rgb = mid.read_albedo(scene.albedo, p["albedo_png_is_srgb"])
        except UnreadableImage as exc:
            self._ctx.skip_image(exc)  # counted under its reason, the file named in the log
            self.bad.add(scene.name)
            return None
        albedo_size = (rgb.shape[1], rgb.shape[0])
        aspect_error = (albedo_size[0] / albedo_size[1]) / (size[0] / size[1]) - 1
        if abs(aspect_error) > p["albedo_aspect_tolerance"]:
            self._fail(scene, "albedo_aspect_mismatch")
            return None
        self._ctx.note_source(scene.albedo, hash_content=False)
        self._key = key
        self._value = (resize_to(luminance(rgb, p["luminance_weights"]), size), albedo_size)
        return self._value

    def _fail(self, scene: mid.Scene, reason: str) -> None:
        self._ctx.reject(reason)
        self.bad.add(scene.name)


def _sample_pair(rng: np.random.Generator, y: np.ndarray, want_same: bool, p: dict) -> tuple | str:
    """Two separated points whose class (same or not) is `want_same`, with their Y, rel and the
    disk radius; or the rejection reason when none is found."""
    h, w = y.shape
    short = min(w, h)
    radius = max(p["disk_radius_frac"] * short, p["min_disk_radius_px"])
    for _ in range(p["max_pair_tries"]):
        pts = sample_separated_points(
            rng, 2, w, h, p["border_margin_frac"] * short, p["min_separation_frac"] * short,
            max_tries=p["max_pair_tries"],
        )
        if len(pts) < 2:
            return "no_separated_points"  # the margins leave no room for two points
        ys = [disk_mean(y, pt, radius) for pt in pts]
        rel = relative_difference(ys[0], ys[1], p["rel_epsilon"])
        if (rel <= p["same_threshold"]) == want_same:
            return pts, ys, rel, radius
    return "no_same_pair" if want_same else "no_darker_pair"


def _to_albedo_grid(xy: Sequence[float], size: tuple[int, int], albedo_size: tuple[int, int]
                    ) -> list[float]:
    """An image point on the albedo's own pixel grid (pixel centres scaled)."""
    return [(float(v) + 0.5) * a / s - 0.5 for v, s, a in zip(xy, size, albedo_size)]


def build(ctx: BuildContext) -> Iterator[Example]:
    p = ctx.params
    mip = p["mip"]
    root = ctx.source_root
    scenes = _usable_scenes(ctx, mid.list_scenes(root, mip))
    pool = [(s, d) for s in scenes for d in range(p["num_directions"])]
    schedule = _ClassSchedule(ctx.rng("schedule"), p["schedule_block"], p["same_fraction"])
    scene_luminance = _SceneLuminance(ctx)
    for i in ctx.rng("order").permutation(len(pool)):
        scene, direction = pool[i]
        if scene.name in scene_luminance.bad:
            continue
        path = scene.image(direction, mip)
        img = ctx.load_image(path)
        if img is None:
            continue
        found = scene_luminance(scene, img.size)
        if found is None:
            continue
        y, albedo_size = found
        target = schedule.peek()
        pair = _sample_pair(ctx.rng("example", scene.name, direction), y, target == SAME, p)
        if isinstance(pair, str):
            ctx.reject(pair)
            continue
        pts, ys, rel, radius = pair
        # The first point is A unless the darker point must carry the target letter.
        first = 0 if target == SAME or (ys[0] < ys[1]) == (target == A) else 1
        pa, pb = pts[first], pts[1 - first]
        y_a, y_b = ys[first], ys[1 - first]
        schedule.pop()
        yield Example(
            images=[draw_points(img, {"A": pa, "B": pb})],
            answer=ctx.letter(target),
            source={
                "dataset": "mid",
                "source_images": [path.relative_to(root).as_posix()],
                "albedo": scene.albedo.relative_to(root).as_posix(),
                "scene": scene.name,
                "direction": direction,
                "mip": mip,
                "image_size": list(img.size),
                "albedo_size": list(albedo_size),
                "points": {"A": list(pa), "B": list(pb)},
                "albedo_points": {
                    "A": _to_albedo_grid(pa, img.size, albedo_size),
                    "B": _to_albedo_grid(pb, img.size, albedo_size),
                },
                "disk_radius_px": radius,
                "Y_A": y_a,
                "Y_B": y_b,
                "rel": rel,
                "same_threshold": p["same_threshold"],
                "luminance_weights": list(p["luminance_weights"]),
                # how the albedo file was made linear: EXR is linear; PNG per albedo_png_is_srgb
                "albedo_transfer": "srgb" if scene.albedo.suffix.lower() == ".png"
                and p["albedo_png_is_srgb"] else "linear",
                "seed": ctx.seed,
            },
        )
