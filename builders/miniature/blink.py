"""Miniature BLINK: `BLINK/<Config>/{val,test}-00000-of-00001.parquet` for every config a task
tests on (tasks.toml `test_source = "blink"`), with BLINK's 11 columns and HF feature metadata.

Per config: 5 val rows (answers cycling through the config's letters) and 2 test rows (answer
"hidden", as published). Rows carry the exact prompt texts (tasks.toml holds BLINK's), the real
number of images per config as JPEG structs `{bytes, path}` (unused slots null), and details a
pass-through must not lose: the first val row's image_1 has a `path`, the second an explanation,
and Object_Localization rows name different objects. Art_Style rows are drawn with the ArtBench
miniature's style palettes (`artbench.painting`): the reference and the answer share a palette,
the other option has another, so the rows are answerable from the pixels.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from builders.miniature import artbench, synthetic_image
from builders.record import ARROW_SCHEMA, FEATURE_DICT, IMAGE_COLUMNS
from builders.registry import load_registry
from builders.sources.blink import BLINK_COLUMNS

TOP = "BLINK"
VAL_ROWS = 5
TEST_ROWS = 2
IMAGES_PER_ROW = {"Art_Style": 3, "Jigsaw": 3, "Visual_Similarity": 3,
                  "Semantic_Correspondence": 2, "Object_Localization": 1, "Relative_Reflectance": 1}
OBJECTS = ("knife", "dog", "umbrella", "traffic light", "cup", "bicycle", "bed")
# BLINK's columns with their `datasets` metadata in the `Sequence` form its files carry.
SCHEMA = pa.schema([ARROW_SCHEMA.field(c) for c in BLINK_COLUMNS], metadata={
    b"huggingface": json.dumps({"info": {"features": {
        c: FEATURE_DICT[c] for c in BLINK_COLUMNS}}}).encode()})


def _jpeg(rng: np.random.Generator, style: int | None = None) -> bytes:
    """A random picture, or with `style` a painting in that ArtBench style's palette."""
    w, h = int(rng.integers(64, 201)), int(rng.integers(64, 161))
    img = synthetic_image(rng, w, h, shapes=3) if style is None else artbench.painting(
        rng, style, w, h)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _art_style_images(rng: np.random.Generator, answer: int) -> list[dict]:
    """Reference, then the same-style painting in option `answer` (0: A) and another style's."""
    style, other = (int(s) for s in rng.choice(len(artbench.PALETTES), 2, replace=False))
    options = [other, other]
    options[answer] = style
    return [{"bytes": _jpeg(rng, s), "path": None} for s in (style, *options)]


def write(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    top = Path(root) / TOP
    specs = [s for s in load_registry().tasks.values() if s.test_source == "blink"]
    for spec in specs:
        config = spec.blink_config
        (top / config).mkdir(parents=True, exist_ok=True)
        for split, n in (("val", VAL_ROWS), ("test", TEST_ROWS)):
            rows = []
            for i in range(n):
                idx = f"{split}_{config}_{i + 1}"
                fields = {"object": OBJECTS[int(rng.integers(len(OBJECTS)))]}
                k = IMAGES_PER_ROW[config]
                slot = i % spec.num_options  # the answer (hidden on test, as published)
                images = (_art_style_images(rng, slot) if config == "Art_Style" else
                          [{"bytes": _jpeg(rng), "path": None} for _ in range(k)])
                if split == "val" and i == 0:
                    images[0]["path"] = f"{idx}_1.jpg"
                rows.append({
                    "idx": idx,
                    "question": spec.render_question(**fields),
                    "sub_task": spec.sub_task,
                    **{c: images[j] if j < k else None for j, c in enumerate(IMAGE_COLUMNS)},
                    "choices": list(spec.choices),
                    "answer": f"({spec.letters[slot]})" if split == "val" else "hidden",
                    "prompt": spec.render_prompt(**fields),
                    "explanation": "Kept verbatim by the pass-through." if i == 1 else "",
                })
            pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA),
                           top / config / f"{split}-00000-of-00001.parquet")
    return top
