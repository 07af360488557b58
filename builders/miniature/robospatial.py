"""Miniature RoboSpatial-Home in its two layouts.

`write(root)` writes the HF dataset's layout, `root/RoboSpatial-Home/data/<category>-00000-of-00001.parquet`
for configuration (7 rows), compatibility (6) and context (7), columns `category`, `question`,
`answer`, `img`, `depth_image`, `mask` with HF Image features. `write_export(root)` writes what
RoboSpatial-Eval's download_benchmark.py makes of it: `root/RoboSpatial-Export/annotations.json`
plus `images/` (same rows and pixels).

Yes/no questions end "Answer yes or no."; context questions end with the release's instruction
for a list of normalised (x, y) tuples, and their gold is a polygon string. Faults at fixed rows:
configuration row 2's gold is "Yes " (valid once normalised), compatibility row 4's gold is
"maybe", context row 3's polygon has one point.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from builders.miniature import synthetic_image

TOP, EXPORT = "RoboSpatial-Home", "RoboSpatial-Export"
ROWS = {"configuration": 7, "compatibility": 6, "context": 7}
FAULTS = {("configuration", 2): "Yes ", ("compatibility", 4): "maybe",
          ("context", 3): "[(0.1, 0.2)]"}
POINT_SUFFIX = (
    "Your answer should be formatted as a list of tuples, i.e. [(x1, y1), ...], where each tuple "
    "contains the x and y coordinates of a point satisfying the conditions above. The coordinates "
    "should be between 0 and 1, indicating the normalized pixel locations of the points."
)
OBJECTS = ("mug", "laptop", "box", "shelf", "plate", "chair", "lamp")
FEATURES = datasets.Features({
    "category": datasets.Value("string"), "question": datasets.Value("string"),
    "answer": datasets.Value("string"), "img": datasets.Image(),
    "depth_image": datasets.Image(), "mask": datasets.Image(),
})


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def polygon(i: int) -> list[tuple[float, float]]:
    """Context row i's gold region: a quadrilateral in normalised coordinates."""
    x, y = 0.1 + 0.05 * (i % 4), 0.2 + 0.05 * (i % 3)
    return [(round(px, 3), round(py, 3)) for px, py in
            ((x, y), (x + 0.3, y), (x + 0.3, y + 0.4), (x, y + 0.4))]


def _rows(seed: int) -> dict[str, list[dict]]:
    rng = np.random.default_rng(seed + 7)
    out: dict[str, list[dict]] = {}
    for category, n in ROWS.items():
        rows = []
        for i in range(n):
            a, b = OBJECTS[i % len(OBJECTS)], OBJECTS[(i + 3) % len(OBJECTS)]
            gold = "no" if i % 2 else "yes"
            if category == "configuration":
                q = f"Is the {a} to the left of the {b}? Answer yes or no."
            elif category == "compatibility":
                q = f"Can the {a} fit on top of the {b}? Answer yes or no."
            else:
                q = (f"In the image, there is a {a}. Pinpoint several points within the vacant "
                     f"space situated to the left of the {a}. {POINT_SUFFIX}")
                gold = str(polygon(i))
            gold = FAULTS.get((category, i), gold)
            img = synthetic_image(rng, 64, 48, shapes=3)
            depth = Image.fromarray(rng.integers(0, 255, (48, 64), dtype=np.uint8), "L")
            mask = Image.new("L", (64, 48), 0)
            rows.append({"category": category, "question": q, "answer": gold,
                         "img": {"bytes": _png(img), "path": f"img_{category}_{i}.png"},
                         "depth_image": {"bytes": _png(depth), "path": f"depth_{category}_{i}.png"},
                         "mask": {"bytes": _png(mask), "path": f"mask_{category}_{i}.png"}})
        out[category] = rows
    return out


def write(root: Path, seed: int = 0) -> Path:
    top = Path(root) / TOP
    (top / "data").mkdir(parents=True, exist_ok=True)
    for category, rows in _rows(seed).items():
        pq.write_table(pa.Table.from_pylist(rows, schema=FEATURES.arrow_schema),
                       top / "data" / f"{category}-00000-of-00001.parquet")
    return top


def write_export(root: Path, seed: int = 0) -> Path:
    """RoboSpatial-Eval's download_benchmark.py output for the same rows."""
    top = Path(root) / EXPORT
    (top / "images").mkdir(parents=True, exist_ok=True)
    entries = []
    for rows in _rows(seed).values():
        for row in rows:
            entry = {k: row[k] for k in ("category", "question", "answer")}
            for column in ("img", "depth_image", "mask"):
                name = f"images/{row[column]['path']}"
                (top / name).write_bytes(row[column]["bytes"])
                entry[column] = name
            entries.append(entry)
    (top / "annotations.json").write_text(json.dumps(entries, indent=2), encoding="utf-8")
    return top
