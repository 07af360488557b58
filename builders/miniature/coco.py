"""Miniature COCO 2017: JPEGs in train2017/ and val2017/ plus instances_*2017.json.

Every image gets a large object whose polygon fills most of its box (passes the 15-50% area and
>= 60% fill filters), a tiny object (fails the area filter), a thin diagonal object (fails the fill
filter), a crowd object stored as uncompressed RLE (must be excluded) and, on every other image, a
large object made of two polygons (multi-polygon masks must be handled). Every third image also has
a second qualifying object at a fixed place (localization keeps one example per image). Categories
use COCO's non-contiguous ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from builders.miniature import synthetic_image

CATEGORIES = [
    {"supercategory": "person", "id": 1, "name": "person"},
    {"supercategory": "animal", "id": 18, "name": "dog"},
    {"supercategory": "furniture", "id": 62, "name": "chair"},
]
SIZES = [(640, 480), (480, 640), (640, 427)]


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's iscrowd=1 format: column-major run lengths starting with a background run."""
    flat = mask.flatten(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:  # the format starts with a (possibly empty) background run
        counts = [0] + counts
    return {"counts": [int(c) for c in counts], "size": [int(mask.shape[0]), int(mask.shape[1])]}


def _poly_box(x, y, w, h, inset=0.05):
    """An octagon inscribed in the box: fills ~90% of it."""
    dx, dy = w * 0.2, h * 0.2
    pts = [x + dx, y + inset, x + w - dx, y + inset, x + w - inset, y + dy, x + w - inset, y + h - dy,
           x + w - dx, y + h - inset, x + dx, y + h - inset, x + inset, y + h - dy, x + inset, y + dy]
    return [round(v, 2) for v in pts]


def _ann(ann_id, image_id, cat, segmentation, iscrowd, width, height):
    if iscrowd:
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    bbox = [round(float(v), 2) for v in mask_utils.toBbox(rle)]
    return {"segmentation": segmentation, "area": float(mask_utils.area(rle)), "iscrowd": iscrowd,
            "image_id": image_id, "bbox": bbox, "category_id": cat, "id": ann_id}


def write(root: Path, seed: int = 0, per_split: dict[str, int] | None = None) -> Path:
    per_split = per_split or {"train2017": 16, "val2017": 8}
    rng = np.random.default_rng(seed)
    top = Path(root) / "coco"
    (top / "annotations").mkdir(parents=True, exist_ok=True)
    image_id, ann_id = 100, 1000
    for folder, count in per_split.items():
        (top / folder).mkdir(exist_ok=True)
        images, anns = [], []
        for k in range(count):
            image_id += int(rng.integers(1, 50))
            W, H = SIZES[k % len(SIZES)]
            name = f"{image_id:012d}.jpg"
            synthetic_image(rng, W, H).save(top / folder / name, quality=90)
            images.append({"id": image_id, "file_name": name, "width": W, "height": H, "license": 1,
                           "coco_url": f"http://images.cocodataset.org/{folder}/{name}",
                           "flickr_url": "", "date_captured": "2013-11-14 17:02:52"})
            # large object: ~20-40% of the image area, polygon fills ~90% of its box
            frac = rng.uniform(0.2, 0.4)
            w = float(np.sqrt(frac * W * H * rng.uniform(0.7, 1.4)))
            w = min(w, W * 0.9)
            h = min(frac * W * H / w, H * 0.9)
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            cat = CATEGORIES[k % len(CATEGORIES)]["id"]
            ann_id += 1
            if k % 2:
                # two polygons side by side forming one object
                segs = [_poly_box(x, y, w / 2, h), _poly_box(x + w / 2, y, w / 2, h)]
            else:
                segs = [_poly_box(x, y, w, h)]
            anns.append(_ann(ann_id, image_id, cat, segs, 0, W, H))
            # tiny object (< 15% of the image)
            ann_id += 1
            anns.append(_ann(ann_id, image_id, 1, [_poly_box(5, 5, 40, 30)], 0, W, H))
            # thin diagonal object: big box, low mask fill
            ann_id += 1
            diag = [10.0, 10.0, 30.0, 10.0, W * 0.6, H * 0.6, W * 0.6 - 20, H * 0.6]
            anns.append(_ann(ann_id, image_id, 62, [diag], 0, W, H))
            # crowd object as uncompressed RLE covering ~25% of the image
            m = np.zeros((H, W), dtype=np.uint8)
            m[H // 2 :, W // 2 :] = 1
            ann_id += 1
            anns.append(_ann(ann_id, image_id, 1, _uncompressed_rle(m), 1, W, H))
            if k % 3 == 2:
                # second qualifying object: box ~22% of the image, octagon fill ~90%
                ann_id += 1
                second = _poly_box(0.05 * W, 0.5 * H, 0.5 * W, 0.45 * H)
                anns.append(_ann(ann_id, image_id, 18, [second], 0, W, H))
        doc = {"info": {"description": "LIVR miniature COCO", "version": "1.0", "year": 2017},
               "licenses": [{"id": 1, "name": "Attribution License", "url": ""}],
               "images": images, "annotations": anns, "categories": CATEGORIES}
        (top / "annotations" / f"instances_{folder}.json").write_text(json.dumps(doc))
    return top
