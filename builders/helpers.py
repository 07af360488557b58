"""Mirage's helper images: written beside a split, read back by the harness.

Owns `HELPERS_FILE`, `helper_record` and `read_helpers`. A task builder puts an example's helper
in `Example.helper` (Jigsaw: the puzzle with its true patch pasted back; VSP: the map with the
solution drawn); the build driver stores each as a record with the example's idx and the helper
as its only image, in a side Parquet file published with the split (`SplitWriter.add_side_file`),
so the split's own records keep BLINK's schema and every loader that reads `data-*.parquet`
ignores them. `read_helpers` is the one place that finds and decodes them.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

from builders.imaging import decode_bytes, encode_image
from builders.io import side_file
from builders.record import Record

HELPERS_FILE = "helpers-mirage.parquet"


def helper_record(record: Record, helper: Image.Image, image_format: str, quality: int) -> Record:
    """The side-file record of `record`'s helper: same idx and fields, the helper as image_1."""
    return replace(record, images=[encode_image(helper, image_format, quality)], image_paths=None)


def read_helpers(split: str | os.PathLike) -> dict[str, Image.Image]:
    """idx -> helper image of a finished split folder; an error naming the file when it has none."""
    path = Path(split)
    try:
        side = side_file(path, HELPERS_FILE)  # a whole split whose side file is as written
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} has no Mirage helper images ({HELPERS_FILE}); rebuild the split with this "
            "version's build-task (the task must set helper_images = true in tasks.toml)"
        ) from None
    rows = pq.read_table(side).to_pylist()
    return {row["idx"]: decode_bytes(row["image_1"]["bytes"]) for row in rows}
