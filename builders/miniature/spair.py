"""Miniature SPair-71k: JPEGs, per-image ImageAnnotation JSONs, Layout lists and PairAnnotation
JSONs named by their layout line (colon included), as in the release (specs/SOURCE_FORMATS.md §3).

Two categories of `IMAGES_PER_CATEGORY` images; each image's `kps` dict holds every keypoint id of
its category, `null` for the 2-3 not visible. Every unordered image pair of a category is a `trn`
pair (random direction) listing the keypoints visible in both, so the image-level split leaves
pairs in both train and val. `kps_ids` are strings in even-numbered pair files and ints in odd
ones. Two special `trn` pairs:
- `FEW_VALID_PAIR` (the first): 3 valid correspondences plus one whose target point is [-1, -1]
  (not visible): must be filtered out (< 4 valid);
- `INVALID_ENTRY_PAIR` (the second): exactly 4 valid correspondences plus one whose source point
  lies outside the source image and one [null, null] target point: kept, and its 4 candidates
  must be exactly the 4 valid keypoints.
`val` and `test` layout lists (2 pairs each) exist so a reader of `trn` can be seen to skip them.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from builders.miniature import synthetic_image

KEYPOINTS = {"aeroplane": 12, "cat": 10}  # keypoint ids per category
IMAGES_PER_CATEGORY = 12
SIZES = [(300, 225), (240, 320), (320, 240), (280, 210)]
FEW_VALID_PAIR = 0  # index among the trn pairs
INVALID_ENTRY_PAIR = 1
POSES = ["Unspecified", "Frontal", "Left", "Rear", "Right"]


def _image_annotation(rng, stem, category, size, num_kps):
    W, H = size
    hidden = set(rng.choice(num_kps, size=int(rng.integers(2, 4)), replace=False).tolist())
    kps = {str(k): None if k in hidden
           else [int(rng.integers(4, W - 4)), int(rng.integers(4, H - 4))]
           for k in range(num_kps)}
    pts = np.array([v for v in kps.values() if v is not None])
    box = [int(pts[:, 0].min()), int(pts[:, 1].min()), int(pts[:, 0].max()), int(pts[:, 1].max())]
    return {
        "filename": f"{stem}.jpg", "src_database": "PASCAL VOC", "src_annotation": "PASCAL VOC",
        "src_image": "PASCAL VOC", "image_width": W, "image_height": H, "image_depth": 3,
        "category": category, "pose": POSES[int(rng.integers(len(POSES)))], "truncated": 0,
        "occluded": 0, "difficult": 0, "bndbox": box, "kps": kps,
        "azimuth_id": int(rng.integers(0, 8)),
    }


def _pair(pair_id, category, src, trg, entries, string_ids, rng):
    """A pair file; `entries` = [(kps id, src [x, y] or None, trg [x, y] or None)]."""
    return {
        "pair_id": pair_id,
        "src_imname": src["filename"], "trg_imname": trg["filename"],
        "src_imsize": [src["image_width"], src["image_height"], 3],
        "trg_imsize": [trg["image_width"], trg["image_height"], 3],
        "src_bndbox": src["bndbox"], "trg_bndbox": trg["bndbox"],
        "src_pose": src["pose"], "trg_pose": trg["pose"], "category": category,
        "src_kps": [e[1] for e in entries], "trg_kps": [e[2] for e in entries],
        "kps_ids": [str(e[0]) if string_ids else e[0] for e in entries],
        "viewpoint_variation": int(rng.integers(0, 3)), "scale_variation": int(rng.integers(0, 3)),
        "truncation": 0, "occlusion": 0, "mirror": 0,
    }


def _entries(src, trg):
    """Every keypoint visible in both images, by id."""
    return [(int(k), src["kps"][k], trg["kps"][k]) for k in src["kps"]
            if src["kps"][k] is not None and trg["kps"][k] is not None]


def _hidden(ann, ids):
    """A keypoint id of `ids` that is not visible in `ann`."""
    return next(k for k in ids if ann["kps"][str(k)] is None)


def write(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    top = Path(root) / "SPair-71k"
    anns: dict[str, list[dict]] = {}
    for c, (category, num_kps) in enumerate(KEYPOINTS.items()):
        (top / "JPEGImages" / category).mkdir(parents=True, exist_ok=True)
        (top / "ImageAnnotation" / category).mkdir(parents=True, exist_ok=True)
        anns[category] = []
        for i in range(IMAGES_PER_CATEGORY):
            stem = f"{2008 + i % 4}_{1000 + 173 * i + 31 * c:06d}"
            size = SIZES[(i + c) % len(SIZES)]
            synthetic_image(rng, *size).save(top / "JPEGImages" / category / f"{stem}.jpg",
                                             quality=90)
            ann = _image_annotation(rng, stem, category, size, num_kps)
            (top / "ImageAnnotation" / category / f"{stem}.json").write_text(json.dumps(ann))
            anns[category].append(ann)

    # trn: every unordered pair of a category's images, then a few held back for val and test
    combos = [(cat, a, b) for cat in anns for a, b in itertools.combinations(anns[cat], 2)]
    combos = [combos[i] for i in rng.permutation(len(combos))]
    held = {"val": combos[:2], "test": combos[2:4]}
    lines: dict[str, list[str]] = {"trn": [], "val": [], "test": []}
    pair_id = 0
    for split, group in (("trn", combos[4:]), *held.items()):
        (top / "PairAnnotation" / split).mkdir(parents=True, exist_ok=True)
        for n, (category, a, b) in enumerate(group):
            src, trg = (a, b) if rng.random() < 0.5 else (b, a)
            entries = _entries(src, trg)
            all_ids = range(KEYPOINTS[category])
            if split == "trn" and n == FEW_VALID_PAIR:
                hid = _hidden(trg, all_ids)
                entries = entries[:3] + [(hid, src["kps"][str(hid)] or [5, 5], [-1, -1])]
            elif split == "trn" and n == INVALID_ENTRY_PAIR:
                out_x = [src["image_width"] + 5, 10]
                entries = entries[:4] + [(_hidden(src, all_ids), out_x, [12, 12]),
                                         (_hidden(trg, all_ids), [12, 12], [None, None])]
            pair_id += 1
            line = f"{pair_id:06d}-{src['filename'][:-4]}-{trg['filename'][:-4]}:{category}"
            doc = _pair(pair_id, category, src, trg, entries, pair_id % 2 == 0, rng)
            (top / "PairAnnotation" / split / f"{line}.json").write_text(json.dumps(doc))
            lines[split].append(line)
    for layout, count in (("large", None), ("small", 10)):
        (top / "Layout" / layout).mkdir(parents=True, exist_ok=True)
        for split, ls in lines.items():
            (top / "Layout" / layout / f"{split}.txt").write_text("\n".join(ls[:count]) + "\n")
    (top / "README").write_text("SPair-71k miniature written by livr builders.miniature.spair\n")
    return top
