"""Miniature FunKPoint: `labels.csv` plus `images/<wnid>/<NNNN>.<ext>` (SOURCE_FORMATS.md §4).

Two sizes, one writer:
* `write` (tests, demo): `ACTIONS` x (`SINGLE_PER_ACTION` images labelled for that action only)
  plus `SHARED` images labelled for two actions (one row each, different keypoints), so per action
  there are enough images for train, val and test pairs.
* `write_real_size`: the real release's size and action distribution, for checking split sizes:
  4,776 (image, action) rows (SOURCE_FORMATS.md §4), the 10 actions, each with the 5 object
  categories it is annotated on and every image of a category labelled for every action of the
  category (`REAL_CATEGORIES`, from the rows of the public curated FunKPoint subset
  Qifei-C/funkpoint_curated_dataset, all_samples.csv); images per category in proportion to the
  highest image number seen per category there, scaled so the rows total 4,776 (1,860 images).
  Images are tiny (the split sizes do not depend on pixels) so it writes in seconds.

Images have different sizes and the three extensions of the release (.jpg, .JPEG, .png);
coordinates are normalised by the image's own width and height (pixel / size, like the real file's
multiples of 1/640 and 1/480). Columns follow the documented order (the real order is
UNCONFIRMED; the reader goes by name).
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

REAL_ROWS = 4776
# category -> (wnid, highest image number seen in the curated subset, actions it is labelled for)
REAL_CATEGORIES: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "basket": ("n02801938", 73, ("Lift Something", "Scoop")),
    "bottle": ("n02876657", 95, ("Mash/Pound", "Pour")),
    "cup": ("n07930864", 92, ("Pour", "Scoop")),
    "dustpan": ("n03259009", 49, ("Lift Something", "Pour")),
    "frying_pan": ("n03400231", 86, ("Mash/Pound", "Pour", "Pull out a nail", "Scoop")),
    "hammer": ("n03481172", 103, ("Mash/Pound", "Pull out a nail")),
    "ladle": ("n03633091", 99, ("Flip", "Lift Something", "Mash/Pound", "Pull out a nail")),
    "scissors": ("n04148054", 91, ("Poke",)),
    "scraper": ("n04150980", 78, ("Brush/Dust", "Poke", "Scrape")),
    "screwdriver": ("n04154565", 80, ("Poke",)),
    "scrub brush": ("n04156140", 52, ("Brush/Dust",)),
    "shoe": ("n04199027", 79, ("Mash/Pound", "Scoop")),
    "spatula": ("n04269944", 89, ("Flip", "Mix", "Scrape")),
    "spoon": ("n04284002", 97, ("Brush/Dust", "Flip", "Mix", "Pull out a nail", "Scoop",
                                "Scrape")),
    "tablefork": ("n04380255", 99, ("Flip", "Lift Something", "Mix", "Pull out a nail",
                                    "Scrape")),
    "tongs": ("n04450749", 57, ("Flip", "Lift Something", "Mix")),
    "toothbrush": ("n04453156", 87, ("Brush/Dust",)),
    "trowel": ("n04489817", 98, ("Poke", "Scrape")),
    "watering_can": ("n04560292", 100, ("Poke", "Pour")),
    "whisk": ("n04578934", 92, ("Brush/Dust", "Mix")),
}
REAL_IMAGE_SIZE = (16, 12)  # pixels play no part in split sizes; keypoints are normalised


def _keypoints(rng: np.random.Generator, size: tuple[int, int]) -> list[str]:
    W, H = size
    out = []
    for _ in range(NUM_KEYPOINTS):
        out += [repr(int(rng.integers(3, W - 3)) / W), repr(int(rng.integers(3, H - 3)) / H)]
    return out


def _write(top: Path, plan: list[tuple[str, str, list[str]]], rng: np.random.Generator,
           sizes: list[tuple[int, int]]) -> Path:
    """One image per plan entry (wnid, category, actions), numbered in plan order, and one
    labels.csv row per (image, action), rows shuffled."""
    rows = []
    for n, (wnid, category, actions) in enumerate(plan):
        size = sizes[n % len(sizes)]
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


def write(root: Path, seed: int = 0) -> Path:
    plan_actions = [[a] for a in ACTIONS for _ in range(SINGLE_PER_ACTION)]
    for i in range(SHARED):
        first = i % len(ACTIONS)
        second = (first + 1 + (i // len(ACTIONS)) % (len(ACTIONS) - 1)) % len(ACTIONS)
        plan_actions.append([ACTIONS[first], ACTIONS[second]])
    plan = [(*OBJECTS[n % len(OBJECTS)], actions) for n, actions in enumerate(plan_actions)]
    return _write(Path(root) / "FunKPoint", plan, np.random.default_rng(seed), SIZES)


def real_image_counts() -> dict[str, int]:
    """Images per category: the curated subset's highest number + 1, scaled (largest remainder)
    so that images x actions per category total `REAL_ROWS`."""
    base = {c: top + 1 for c, (_, top, _) in REAL_CATEGORIES.items()}
    rows = sum(base[c] * len(a) for c, (_, _, a) in REAL_CATEGORIES.items())
    exact = {c: base[c] * REAL_ROWS / rows for c in base}
    counts = {c: int(v) for c, v in exact.items()}
    for c in sorted(exact, key=lambda c: (counts[c] - exact[c], c)):
        left = REAL_ROWS - sum(counts[k] * len(REAL_CATEGORIES[k][2]) for k in counts)
        if left >= len(REAL_CATEGORIES[c][2]):
            counts[c] += 1
    # the last few rows, one image at a time, on single-action categories
    singles = sorted(c for c, (_, _, a) in REAL_CATEGORIES.items() if len(a) == 1)
    for i in range(REAL_ROWS - sum(counts[c] * len(REAL_CATEGORIES[c][2]) for c in counts)):
        counts[singles[i % len(singles)]] += 1
    return counts


def write_real_size(root: Path, seed: int = 0) -> Path:
    counts = real_image_counts()
    plan = [(wnid, category, list(actions))
            for category, (wnid, _, actions) in REAL_CATEGORIES.items()
            for _ in range(counts[category])]
    return _write(Path(root) / "FunKPoint", plan, np.random.default_rng(seed), [REAL_IMAGE_SIZE])
