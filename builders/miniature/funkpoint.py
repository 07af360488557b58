"""Miniature FunKPoint: `labels.csv` plus `images/<wnid>/<NNNN>.<ext>` (SOURCE_FORMATS.md §4).

`ACTIONS` x (`SINGLE_PER_ACTION` images labelled for that action only) plus `SHARED` images
labelled for two actions (one row each, different keypoints), so per action there are enough
images for train, val and test pairs. Images have different sizes and the three extensions of the
release (.jpg, .JPEG, .png); coordinates are normalised by the image's own width and height
(pixel / size, like the real file's multiples of 1/640 and 1/480). Columns follow the documented
order (the real order is UNCONFIRMED; the reader goes by name).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from builders.miniature import synthetic_image

ACTIONS = ["Brush/Dust", "Mash/Pound", "Pour", "Scoop"]
OBJECTS = [("n04284002", "spoon"), ("n04453156", "toothbrush"), ("n03633091", "ladle"),
           ("n04269944", "spatula"), ("n02801938", "basket"), ("n03259009", "dustpan")]
SIZES = [(128, 96), (160, 120), (120, 160), (144, 108), (100, 75)]
EXTENSIONS = [".jpg", ".JPEG", ".png"]
SINGLE_PER_ACTION = 26
SHARED = 16
NUM_KEYPOINTS = 5
COLUMNS = [*(f"p{k}_{a}" for k in range(1, NUM_KEYPOINTS + 1) for a in "xy"), "difficulty",
           "image_path", "action", "wnid", "object_category"]


def _keypoints(rng: np.random.Generator, size: tuple[int, int]) -> list[str]:
    W, H = size
    out = []
    for _ in range(NUM_KEYPOINTS):
        out += [repr(int(rng.integers(3, W - 3)) / W), repr(int(rng.integers(3, H - 3)) / H)]
    return out


def write(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    top = Path(root) / "FunKPoint"
    plan = [[a] for a in ACTIONS for _ in range(SINGLE_PER_ACTION)]
    for i in range(SHARED):
        first = i % len(ACTIONS)
        second = (first + 1 + (i // len(ACTIONS)) % (len(ACTIONS) - 1)) % len(ACTIONS)
        plan.append([ACTIONS[first], ACTIONS[second]])
    rows = []
    for n, actions in enumerate(plan):
        wnid, category = OBJECTS[n % len(OBJECTS)]
        size = SIZES[n % len(SIZES)]
        rel = f"images/{wnid}/{n:04d}{EXTENSIONS[n % len(EXTENSIONS)]}"
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        img = synthetic_image(rng, *size)
        img.save(top / rel, format="PNG" if rel.endswith(".png") else "JPEG")
        for action in actions:
            difficulty = ["easy", "medium", "hard"][int(rng.integers(3))]
            rows.append([*_keypoints(rng, size), difficulty, rel, action, wnid, category])
    with (top / "labels.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows[i] for i in rng.permutation(len(rows)))
    return top
