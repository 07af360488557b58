"""Miniature MMVP: `root/MMVP/Questions.csv` (Index, Question, Options, Correct Answer) and
`root/MMVP/MMVP Images/<Index>.jpg`, 12 rows = 6 pairs; the two questions of a pair are the same
with opposite answers, as in the release. Faults: row 10's Options are not "(a) .. (b) .." and
image 12 is missing, so pairs 5 and 6 are incomplete.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from builders.miniature import synthetic_image

TOP = "MMVP"
ROWS = 12
BAD_OPTIONS_ROW, MISSING_IMAGE_ROW = 10, 12
PAIRS = (
    ("Is the door open or closed?", "Open", "Closed"),
    ("Is the dog facing left or right?", "Left", "Right"),
    ("Are there two or three cups?", "Two", "Three"),
    ("Is the light on or off?", "On", "Off"),
    ("Is the butterfly's wing visible?", "Yes", "No"),
    ("Is the clock showing noon?", "Yes", "No"),
)


def write(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed + 300)
    top = Path(root) / TOP
    (top / "MMVP Images").mkdir(parents=True, exist_ok=True)
    with (top / "Questions.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Index", "Question", "Options", "Correct Answer"])
        for index in range(1, ROWS + 1):
            question, a, b = PAIRS[(index - 1) // 2]
            options = f"(a) {a} (b) {b}" if index != BAD_OPTIONS_ROW else f"{a} / {b}"
            writer.writerow([index, question, options, "(a)" if index % 2 else "(b)"])
            if index != MISSING_IMAGE_ROW:
                synthetic_image(rng, 56, 40, shapes=3).save(
                    top / "MMVP Images" / f"{index}.jpg", quality=90)
    return top
