"""Reader of RoboSpatial-Home (Song et al., CVPR 2025) in its two public layouts.

- The HF dataset `chanhee-luke/RoboSpatial-Home`: `data/{configuration,compatibility,context}-*.parquet`
  (the split is the category), columns `category`, `question`, `answer`, `img`, `depth_image`,
  `mask` (images as `{bytes, path}` structs). Read directly or from a hub cache.
- RoboSpatial-Eval's export (its `download_benchmark.py`): `annotations.json`, a list of
  `{category, question, answer, img, depth_image, mask}` with image paths relative to the folder
  (`images/...`).

`answer` is "yes"/"no" for configuration and compatibility, and for context a polygon string
"[(x, y), ...]" in image coordinates normalised to [0, 1]. Rows come back in file order, the
categories in the order asked for; only the RGB image is used (the model sees `img` only, as in
RoboSpatial-Eval's `run_model`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from builders.sources import SourceLayoutError
from builders.sources.hub import candidates

NAME = "robospatial"
TOP_FOLDERS = ("RoboSpatial-Home", "robospatial-home", "robospatial")
HUB_REPO = "chanhee-luke/RoboSpatial-Home"
CATEGORIES = ("configuration", "compatibility", "context")
ANNOTATIONS = "annotations.json"
COLUMNS = ("category", "question", "answer", "img")
LAYOUT = """\
<robospatial_root>/                 (HF chanhee-luke/RoboSpatial-Home)
  data/configuration-00000-of-00001.parquet    category, question, answer, img, depth_image, mask
  data/compatibility-00000-of-00001.parquet
  data/context-00000-of-00001.parquet
or RoboSpatial-Eval's download_benchmark.py output:
  annotations.json                  [{category, question, answer, img: "images/...", ...}, ...]
  images/...
"""


@dataclass(frozen=True)
class RoboRow:
    key: str  # "<file>#<row>"
    category: str
    question: str
    answer: str
    image: bytes


def find_root(path: Path) -> Path:
    for cand in candidates(path, TOP_FOLDERS, (HUB_REPO,)):
        if (cand / ANNOTATIONS).is_file() or any(
            any((cand / "data").glob(f"{c}-*.parquet")) for c in CATEGORIES
        ):
            return cand
    raise SourceLayoutError(NAME, path, f"no data/<category>-*.parquet or {ANNOTATIONS}", LAYOUT)


def _parquet_rows(root: Path, category: str) -> Iterator[tuple[Path, RoboRow | str]]:
    files = sorted((root / "data").glob(f"{category}-*.parquet"))
    if not files:
        raise SourceLayoutError(NAME, root, f"no data/{category}-*.parquet", LAYOUT)
    for path in files:
        pf = pq.ParquetFile(path)
        missing = [c for c in COLUMNS if c not in pf.schema_arrow.names]
        if missing:
            raise ValueError(f"{path}: no column {', '.join(missing)}; a RoboSpatial-Home parquet "
                             f"file has {', '.join(COLUMNS)}: re-download it")
        i = 0
        for batch in pf.iter_batches(batch_size=32, columns=list(COLUMNS)):
            for row in batch.to_pylist():
                image = (row["img"] or {}).get("bytes")
                yield path, (RoboRow(f"{path.name}#{i}", row["category"] or category,
                                     row["question"] or "", row["answer"] or "", image)
                             if image else "no_image_bytes")
                i += 1


def _exported_rows(root: Path, category: str) -> Iterator[tuple[Path, RoboRow | str]]:
    path = root / ANNOTATIONS
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); re-run RoboSpatial-Eval's "
                         f"download_benchmark.py") from None
    for i, entry in enumerate(entries):
        if entry.get("category") != category:
            continue
        image = root / (entry.get("img") or "")
        yield image, (RoboRow(f"{ANNOTATIONS}#{i}", category, entry.get("question") or "",
                              entry.get("answer") or "", image.read_bytes())
                      if entry.get("img") and image.is_file() else "missing_image")


def iter_rows(root: Path, categories: list[str]) -> Iterator[tuple[Path, RoboRow | str]]:
    """(file read, row or reason) for each category in turn, rows in file order."""
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown RoboSpatial categor{'ies' if len(unknown) > 1 else 'y'} "
                         f"{', '.join(unknown)}; valid: {', '.join(CATEGORIES)}")
    read = _exported_rows if (Path(root) / ANNOTATIONS).is_file() else _parquet_rows
    for category in categories:
        yield from read(Path(root), category)
