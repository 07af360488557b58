"""Reader of FunKPoint `labels.csv` (specs/SOURCE_FORMATS.md §4): one row per (image, action) with
five functional keypoints normalised by the image's width and height.

Columns are read by NAME (`p1_x`, `p1_y` .. `p5_x`, `p5_y`, `image_path`, `action`; optional
`object_category`, `wnid`, `difficulty`), so the column order, which is UNCONFIRMED, and any extra
column do not matter. `image_path` is relative to the FunKPoint folder
(`images/<wnid>/<NNNN>.<ext>`, extensions mixed: .jpg, .JPEG, .png); it is used as written. The
same image appears in one row per action it is labelled for. A row with an empty path or action,
a coordinate that is not a number in [0, 1], or a repeated (image, action) is dropped and counted
under a named reason; a file without the required columns raises `SourceLayoutError` naming them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from builders.sources import SourceLayoutError, locate, read_csv_rows

NAME = "funkpoint"
# Licence note for the dataset card (builders/card.py).
LICENSE = ("FunKPoint: images from ImageNet (ImageNet terms of access); keypoint labels: "
           "see the authors' release (licence not confirmed here)")
LABELS = "labels.csv"
LAYOUT = """\
<FunKPoint>/
  labels.csv                   header row; columns by name: p1_x, p1_y, ..., p5_x, p5_y
                               (normalised to [0, 1]), difficulty, image_path, action, wnid,
                               object_category
  images/<wnid>/<NNNN>.<ext>   (.jpg, .JPEG or .png; image_path is relative to <FunKPoint>/)
"""


@dataclass(frozen=True)
class Label:
    """One labels.csv row: the keypoints of one image for one action."""

    image: str  # relative to the FunKPoint folder
    action: str
    keypoints: tuple[tuple[float, float], ...]  # normalised (x, y), keypoint 1 first
    object_category: str
    wnid: str
    difficulty: str


def find_root(path: Path) -> Path:
    root = locate(path, LABELS, ("FunKPoint", "funkpoint"))
    if root is None:
        raise SourceLayoutError(NAME, Path(path), f"no {LABELS}", LAYOUT)
    return root


def keypoint_columns(num_keypoints: int) -> list[str]:
    return [f"p{k}_{axis}" for k in range(1, num_keypoints + 1) for axis in ("x", "y")]


def _unit(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) and 0.0 <= v <= 1.0 else None


def read_labels(root: Path, num_keypoints: int) -> tuple[list[Label], Counter]:
    """The usable rows sorted by (image, action), and the dropped rows counted by reason."""
    required = [*keypoint_columns(num_keypoints), "image_path", "action"]
    rejected: Counter = Counter()
    seen: dict[tuple[str, str], Label] = {}
    rows = read_csv_rows(root / LABELS, required, "Use FunKPoint's labels.csv as distributed.")
    for row in rows:
        image, action = row["image_path"].replace("\\", "/"), row["action"]
        if not image or not action:
            rejected["label_row_missing_image_or_action"] += 1
            continue
        coords = [_unit(row[c]) for c in keypoint_columns(num_keypoints)]
        if any(v is None for v in coords):
            rejected["label_row_bad_keypoint"] += 1
            continue
        if (image, action) in seen:
            rejected["label_row_duplicate"] += 1
            continue
        seen[(image, action)] = Label(
            image, action, tuple(zip(coords[0::2], coords[1::2])),
            row.get("object_category", ""), row.get("wnid", ""), row.get("difficulty", ""))
    return [seen[k] for k in sorted(seen)], rejected
