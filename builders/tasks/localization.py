"""Object Localization from COCO 2017 instances (paper A.3, PROTOCOL.md section 2).

Candidates are non-crowd instances whose COCO bbox covers `min_box_area_frac`..`max_box_area_frac`
of the image and whose mask (pycocotools `annToMask`: polygons, multi-polygons and RLE alike)
fills at least `min_mask_fill` of that bbox. Per image, `max_examples_per_image` qualifying
instances are picked with the image's own rng. The gold box is the COCO bbox; the distractor comes
from jittering the box's corners (each of x1, x2 by up to `jitter_frac` of the box width, each of
y1, y2 by up to `jitter_frac` of its height, so the four corners move and the result is still a
box) until it lies inside the image with IoU in [iou_min, iou_max]. Both boxes are drawn on the
image at original resolution, labelled A and B. train2017 and val2017 are pooled and each image id
is hashed into one split.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from builders.drawing import draw_boxes
from builders.geometry import Box, iou, xywh_to_xyxy
from builders.record import Example
from builders.registry import BuilderParams
from builders.sources import coco

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """Localization's `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    min_box_area_frac: float
    max_box_area_frac: float
    min_mask_fill: float
    iou_min: float
    iou_max: float
    jitter_frac: float
    jitter_max_tries: int
    max_examples_per_image: int
    split_fractions: dict[str, float]


def _valid_bbox(ann: dict) -> bool:
    b = ann.get("bbox")
    return (isinstance(b, list) and len(b) == 4
            and all(isinstance(v, (int, float)) and math.isfinite(v) for v in b)
            and b[2] > 0 and b[3] > 0)


def _clean_segmentation(seg: object, size: tuple[int, int]) -> list | dict | None:
    """The segmentation in a shape `annToMask` rasterises (it raises a bare Exception otherwise):
    an RLE dict of this image's size, or the polygons ([x1, y1, x2, y2, ...]) with >= 3 points;
    shorter polygons have no area and are dropped, as detectron2 does. None when nothing is left."""
    if isinstance(seg, dict):
        ok = isinstance(seg.get("counts"), (list, str)) and seg.get("size") == [size[1], size[0]]
        return seg if ok else None
    if not isinstance(seg, list):
        return None
    polys = [poly for poly in seg if isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0
             and all(isinstance(v, (int, float)) and math.isfinite(v) for v in poly)]
    return polys or None


def _image_size(info: dict) -> tuple[int, int] | None:
    w, h = info.get("width"), info.get("height")
    if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0 and info.get("file_name"):
        return w, h
    return None


def _qualifying(ctx: BuildContext, item: coco.InstanceImage, size: tuple[int, int]) -> list[dict]:
    """The image's instances that pass every annotation filter, each with its area fraction and
    mask fill; every other instance is counted under the first filter it fails."""
    p = ctx.params
    W, H = size
    out = []
    for ann in item.annotations():
        if ann.get("iscrowd", 0):
            ctx.reject("crowd")
            continue
        seg = _clean_segmentation(ann.get("segmentation"), size)
        if not _valid_bbox(ann) or seg is None or ann.get("category_id") not in item.index.cats:
            ctx.reject("malformed_annotation")
            continue
        w, h = ann["bbox"][2], ann["bbox"][3]
        area_frac = w * h / (W * H)
        if not p["min_box_area_frac"] <= area_frac <= p["max_box_area_frac"]:
            ctx.reject("box_area_out_of_range")
            continue
        fill = float(item.index.annToMask({**ann, "segmentation": seg}).sum()) / (w * h)
        if fill < p["min_mask_fill"]:
            ctx.reject("mask_fill_below_min")
            continue
        out.append({"ann": ann, "area_frac": area_frac, "mask_fill": fill})
    return out


def _jitter_distractor(
    rng: np.random.Generator, gold: Box, size: tuple[int, int], p: dict
) -> Box | None:
    x1, y1, x2, y2 = gold
    w, h = x2 - x1, y2 - y1
    W, H = size
    for _ in range(p["jitter_max_tries"]):
        dx = rng.uniform(-1.0, 1.0, size=2) * p["jitter_frac"] * w
        dy = rng.uniform(-1.0, 1.0, size=2) * p["jitter_frac"] * h
        # Rounded before the IoU test so the recorded box is exactly the one that passed it.
        box = (round(x1 + dx[0], 2), round(y1 + dy[0], 2), round(x2 + dx[1], 2), round(y2 + dy[1], 2))
        if not (0 <= box[0] < box[2] <= W and 0 <= box[1] < box[3] <= H):
            continue
        if p["iou_min"] <= iou(box, gold) <= p["iou_max"]:
            return box
    return None


def build(ctx: BuildContext) -> Iterator[Example]:
    p = ctx.params
    root = coco.find_root(ctx.source_root)
    for _, path in coco.instance_files(root):
        ctx.note_source(path, hash_content=True)
    items, seen = [], set()
    for item in coco.instance_images(root):
        if item.image_id in seen:  # one id in both instance files: keep the first (sorted) row
            ctx.reject("duplicate_image_id")
            continue
        seen.add(item.image_id)
        if ctx.owns(item.image_id):
            items.append(item)
    letters = ctx.spec.letters
    for i in ctx.rng("order").permutation(len(items)):
        item = items[i]
        size = _image_size(item.info)
        if size is None:
            ctx.reject("malformed_image_row")
            continue
        candidates = _qualifying(ctx, item, size)
        if not candidates:
            continue
        rng = ctx.rng("example", item.image_id)
        k = min(p["max_examples_per_image"], len(candidates))
        ctx.reject("over_examples_per_image", len(candidates) - k)
        picked = [candidates[j] for j in sorted(rng.choice(len(candidates), size=k, replace=False))]
        img = ctx.load_image(root / item.folder / item.info["file_name"])
        if img is None:
            continue
        if img.size != size:
            ctx.reject("image_size_mismatch", k)
            continue
        for cand in picked:
            ann = cand["ann"]
            gold = xywh_to_xyxy(ann["bbox"])
            distractor = _jitter_distractor(rng, gold, size, p)
            if distractor is None:
                ctx.reject("no_distractor_in_iou_range")
                continue
            slot = ctx.answer_slot()
            rects = [distractor] * len(letters)
            rects[slot] = gold
            boxes = {letters[j]: list(r) for j, r in enumerate(rects)}
            category = item.index.cats[ann["category_id"]]["name"]
            yield Example(
                images=[draw_boxes(img, boxes)],
                answer=ctx.letter(slot),
                fields={"object": category},
                source={
                    "dataset": "coco",
                    "source_images": [item.rel],
                    "image": item.rel,
                    "image_id": item.image_id,
                    "annotation_id": ann["id"],
                    "category_id": ann["category_id"],
                    "category": category,
                    "image_size": list(size),
                    "boxes": boxes,
                    "gold_box": list(gold),
                    "distractor_box": list(distractor),
                    "iou": iou(distractor, gold),
                    "box_area_frac": cand["area_frac"],
                    "mask_fill": cand["mask_fill"],
                    "seed": ctx.seed,
                },
            )
