"""Reader of a local copy of the BLINK benchmark (`BLINK-Benchmark/BLINK`); never the network.

Two layouts are read (SOURCE_FORMATS.md section 9):
- the HF repository layout, one folder per config with `val-*.parquet` and `test-*.parquet`
  (what `huggingface-cli download BLINK-Benchmark/BLINK --repo-type dataset --local-dir BLINK`
  writes);
- the Hugging Face hub cache (`~/.cache/huggingface/hub`, or its `datasets--BLINK-Benchmark--BLINK`
  folder), which holds the same files under `snapshots/<revision>/`; the revision named by
  `refs/main` is used, else the only snapshot.
The processed `datasets` Arrow cache (`~/.cache/huggingface/datasets`) is not read.

Rows come back as plain dicts with BLINK's 11 columns exactly as stored (image columns are
`{bytes, path}` structs or None), so a pass-through writes them unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from builders.record import COLUMNS, IMAGE_COLUMNS
from builders.sources import SourceLayoutError
from builders.sources.hub import candidates

NAME = "blink"
# Licence note for the dataset card (builders/card.py).
LICENSE = "BLINK: Apache-2.0 (dataset card of BLINK-Benchmark/BLINK)"
CONFIGS = (
    "Art_Style", "Counting", "Forensic_Detection", "Functional_Correspondence", "IQ_Test",
    "Jigsaw", "Multi-view_Reasoning", "Object_Localization", "Relative_Depth",
    "Relative_Reflectance", "Semantic_Correspondence", "Spatial_Relation",
    "Visual_Correspondence", "Visual_Similarity",
)
# BLINK's own columns: the record columns before our task / split / source.
BLINK_COLUMNS = COLUMNS[: COLUMNS.index("explanation") + 1]
TOP_FOLDERS = ("BLINK", "blink")
HUB_REPO = "BLINK-Benchmark/BLINK"
LAYOUT = """\
<blink_root>/                                  (a local copy of the HF dataset BLINK-Benchmark/BLINK)
  Jigsaw/val-00000-of-00001.parquet            idx, question, sub_task, image_1..image_4,
  Jigsaw/test-00000-of-00001.parquet           choices, answer, prompt, explanation
  Object_Localization/val-00000-of-00001.parquet ...
  (one folder per config; or point at a Hugging Face hub cache holding
   datasets--BLINK-Benchmark--BLINK/snapshots/<revision>/<Config>/...)
"""


def find_root(path: Path) -> Path:
    """The folder holding the config folders: `path`, a usual top folder inside it, or the
    snapshot of a hub cache."""
    for cand in candidates(path, TOP_FOLDERS, (HUB_REPO,)):
        if any((cand / c).is_dir() for c in CONFIGS):
            return cand
    raise SourceLayoutError(NAME, path, "no BLINK config folder (Jigsaw/, Art_Style/, ...)", LAYOUT)


def split_files(root: Path, config: str, split: str) -> list[Path]:
    """The parquet shards of one config's split (`val` or `test`), in order."""
    files = sorted((Path(root) / config).glob(f"{split}-*.parquet"))
    if not files:
        raise SourceLayoutError(
            NAME, root, f"no {config}/{split}-00000-of-00001.parquet (config {config!r})", LAYOUT
        )
    return files


def iter_rows(path: Path, batch_rows: int = 32) -> Iterator[dict[str, Any]]:
    """The rows of one shard in file order, BLINK columns only, values as stored."""
    pf = pq.ParquetFile(path)
    missing = [c for c in BLINK_COLUMNS if c not in pf.schema_arrow.names]
    if missing:
        raise ValueError(
            f"{path}: no column {', '.join(missing)}; a BLINK parquet file has "
            f"{', '.join(BLINK_COLUMNS)}: re-download it from BLINK-Benchmark/BLINK"
        )
    # Batches keep memory bounded: Art_Style's images are several megapixels each.
    for batch in pf.iter_batches(batch_size=batch_rows, columns=list(BLINK_COLUMNS)):
        yield from batch.to_pylist()


def row_images(row: dict[str, Any]) -> list[bytes]:
    """The encoded images of a row in prompt order (non-null image_1..image_4)."""
    return [row[c]["bytes"] for c in IMAGE_COLUMNS if row.get(c) is not None]
