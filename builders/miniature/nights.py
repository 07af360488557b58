"""Miniature NIGHTS: `data.csv` with the real 10-column header and PNG triplets under ref/000/
and distort/000/.

Rows span train/val/test with mixed `is_imagenet`, left- and right-preferred triplets, one
fractional-vote row, votes written as ints and as floats, and rows the builder must drop: one
with 5 votes per split (DreamSim keeps >= 6) and one train tie (0.5 / 0.5). Ids skip numbers, as
in the release. The candidate humans preferred is made visibly closer to the reference (a smooth
colour shift) than the other (half blended with another image), so tests can check answers on
pixels.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from builders.miniature import synthetic_image
from builders.sources.nights import CSV, TOP

SIZE = 64
HEADER = ["id", "left_vote", "right_vote", "votes", "ref_path", "left_path", "right_path", "split",
          "is_imagenet", "prompt"]
PROMPTS = ["An image of a goldfish", "An image of a tractor", "An image of a bakery",
           "An image of a sunflower"]
# (split, votes as written, right_vote as written or None for a random unanimous side)
ROWS = (
    [("train", "6", None)] * 8 + [("train", "7.0", None), ("train", "6", "0.8333333333333334"),
                                  ("train", "5", None), ("train", "6", "0.5")]
    + [("val", "6", None)] * 3 + [("val", "5", None)]
    + [("test", "6", None)] * 3
)


def _near(rng: np.random.Generator, ref: Image.Image) -> Image.Image:
    """A smooth colour shift of the reference (what a mild SD distortion looks like)."""
    low = Image.fromarray(rng.integers(0, 41, size=(2, 2, 3), dtype=np.uint8), "RGB")
    shift = np.asarray(low.resize((SIZE, SIZE), Image.BILINEAR), dtype=np.int16) - 20
    arr = np.asarray(ref, dtype=np.int16) + shift
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _far(rng: np.random.Generator, ref: Image.Image) -> Image.Image:
    return Image.blend(ref, synthetic_image(rng, SIZE, SIZE), 0.5)


def write(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    top = Path(root) / TOP
    (top / "ref" / "000").mkdir(parents=True, exist_ok=True)
    (top / "distort" / "000").mkdir(parents=True, exist_ok=True)
    rows = []
    tid = 0
    for k, (split, votes, right_vote) in enumerate(ROWS):
        tid += int(rng.integers(1, 4))  # not every number exists
        if right_vote is None:
            right_vote = "1.0" if k % 2 else "0.0"
        left_vote = repr(1.0 - float(right_vote))
        ref_rel, left_rel, right_rel = (
            f"ref/000/{tid:03d}.png", f"distort/000/{tid:03d}_0.png", f"distort/000/{tid:03d}_1.png"
        )
        ref = synthetic_image(rng, SIZE, SIZE)
        near, far = _near(rng, ref), _far(rng, ref)
        right_closer = float(right_vote) > 0.5
        ref.save(top / ref_rel)
        (far if right_closer else near).save(top / left_rel)
        (near if right_closer else far).save(top / right_rel)
        rows.append([str(tid), left_vote, right_vote, votes, ref_rel, left_rel, right_rel, split,
                     str(k % 3 == 0), PROMPTS[k % len(PROMPTS)]])
    with (top / CSV).open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(rows)
    (top / "README.md").write_text("LIVR miniature NIGHTS (synthetic; same layout as nights.zip)\n")
    return top
