"""Reader of PixMo-Count (`allenai/pixmo-count` on the Hugging Face Hub) for Counting.

The dataset is three parquet files of rows (image_url, image_sha256, count, points, label); the
images are NOT included and are downloaded by URL (`builders.download`) into a cache kept next to
the dataset (`<root>/.livr-image-cache`, or `$LIVR_IMAGE_CACHE`).

Tolerances (SOURCE_FORMATS.md section 8):
- `points` is a list of `{x, y}` structs (pyarrow/pandas view of the HF sequence feature) or a
  dict of lists `{"x": [...], "y": [...]}` (the `datasets` view written back to parquet); both
  are read. Empty or missing points (the eval splits: MED confidence) are fine.
- `image_sha256` may be missing or stale (a community report says re-downloaded bytes no longer
  match): it is only compared, never trusted.
- A split may be sharded (`data/<split>-00000-of-0000N.parquet`): every shard is read in order.
- An HF `datasets` cache (`~/.cache/huggingface/datasets`) is not read: download the parquet files
  (`huggingface-cli download allenai/pixmo-count --repo-type dataset --local-dir pixmo-count`).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from builders.sources import SourceLayoutError

NAME = "pixmo"
# Licence note for the dataset card (builders/card.py).
LICENSE = ("PixMo-Count: ODC-BY; the images are third-party URLs under their own terms")
SPLITS = ("train", "validation", "test")
TOP_FOLDERS = ("pixmo-count", "pixmo_count", "pixmo")
CACHE_FOLDER = ".livr-image-cache"
CACHE_ENV = "LIVR_IMAGE_CACHE"
REQUIRED_COLUMNS = ("image_url", "count", "label")
LAYOUT = """\
<pixmo_root>/                               (a local copy of the HF dataset allenai/pixmo-count)
  data/train-00000-of-00001.parquet         image_url, image_sha256, count, points, label
  data/validation-00000-of-00001.parquet
  data/test-00000-of-00001.parquet
  .livr-image-cache/                        created by build-task: downloaded images by URL
                                            ($LIVR_IMAGE_CACHE puts it elsewhere)
"""


@dataclass(frozen=True)
class PixmoRow:
    split: str  # PixMo's split name: train / validation / test
    row: int  # 0-based row in the split's files, in file order
    url: str
    sha256: str  # expected, lower-case hex; "" when the file has none
    count: int
    label: str
    points: tuple[tuple[float, float], ...]


def find_root(path: Path) -> Path:
    """The dataset folder: `path` itself or a usual top folder inside it holding data/*.parquet."""
    path = Path(path)
    for cand in (path, *(path / n for n in TOP_FOLDERS)):
        if any((cand / "data").glob("*-0000*-of-*.parquet")):
            return cand
    raise SourceLayoutError(NAME, path, "no data/<split>-00000-of-00001.parquet files", LAYOUT)


def split_files(root: Path, split: str) -> list[Path]:
    files = sorted((Path(root) / "data").glob(f"{split}-*-of-*.parquet"))
    if not files:
        raise SourceLayoutError(NAME, root, f"no data/{split}-00000-of-00001.parquet", LAYOUT)
    return files


def cache_dir(root: Path) -> Path:
    """The download cache (created if needed): `$LIVR_IMAGE_CACHE`, else inside the dataset."""
    folder = Path(os.environ.get(CACHE_ENV) or Path(root) / CACHE_FOLDER)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create the image cache {folder} ({exc}); set ${CACHE_ENV} to a "
                      f"writable folder") from exc
    return folder


def _points(value: Any) -> tuple[tuple[float, float], ...]:
    """Both encodings of the points sequence -> ((x, y), ...); raises ValueError when malformed."""
    if value is None:
        return ()
    if isinstance(value, dict):
        xs, ys = value.get("x") or [], value.get("y") or []
        if len(xs) != len(ys):
            raise ValueError("x and y lists differ in length")
        pairs = list(zip(xs, ys))
    else:
        pairs = [(p["x"], p["y"]) for p in value]
    out = tuple((float(x), float(y)) for x, y in pairs)
    if not all(math.isfinite(v) for xy in out for v in xy):
        raise ValueError("non-finite coordinate")
    return out


def _count(value: Any) -> int:
    if isinstance(value, bool) or value is None or float(value) != int(value) or value < 0:
        raise ValueError(f"count {value!r} is not a non-negative integer")
    return int(value)


def read_rows(root: Path, split: str) -> tuple[list[PixmoRow], Counter]:
    """Every well-formed row of a split in file order, and the malformed ones counted by field
    (`malformed_<field>`)."""
    rows: list[PixmoRow] = []
    bad: Counter = Counter()
    index = 0
    for path in split_files(root, split):
        table = pq.read_table(path)
        missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
        if missing:
            raise ValueError(
                f"{path}: no column {', '.join(missing)} (has {', '.join(table.column_names)}); "
                f"expected PixMo-Count's columns image_url, image_sha256, count, points, label: "
                f"re-download the file from allenai/pixmo-count"
            )
        for rec in table.to_pylist():
            i, index = index, index + 1
            url, label = rec.get("image_url"), rec.get("label")
            if not isinstance(url, str) or not url.strip():
                bad["malformed_image_url"] += 1
                continue
            if not isinstance(label, str) or not label.strip():
                bad["malformed_label"] += 1
                continue
            try:
                count = _count(rec.get("count"))
            except (TypeError, ValueError):
                bad["malformed_count"] += 1
                continue
            try:
                points = _points(rec.get("points"))
            except (KeyError, TypeError, ValueError):
                bad["malformed_points"] += 1
                continue
            rows.append(PixmoRow(split, i, url.strip(), (rec.get("image_sha256") or "").lower(),
                                 count, label.strip(), points))
    return rows, bad
