"""Miniature BLINK, the configs `builders.miniature.blink` does not write: every config none of
our nine tasks tests on (Counting, IQ_Test, Relative_Depth, Multi-view_Reasoning,
Spatial_Relation, Forensic_Detection, Functional_Correspondence, Visual_Correspondence), so that
the two modules together write all 14 into the same `BLINK/` folder.

Same conventions as that module: `<Config>/{val,test}-00000-of-00001.parquet` with BLINK's 11
columns and HF feature metadata, 5 val rows (answers cycling through the config's letters) and 2
test rows (answer "hidden"); each config's real number of images and options
(SOURCE_FORMATS.md section 9), BLINK's `(A) <choice>` prompt layout and sub_task names with
spaces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from builders.miniature.blink import SCHEMA, TEST_ROWS, TOP, VAL_ROWS, _jpeg
from builders.record import IMAGE_COLUMNS
from builders.registry import LETTERS, load_registry

# config -> (images per row, question, options)
CONFIGS: dict[str, tuple[int, str, tuple[str, ...]]] = {
    "Counting": (1, "How many cups are in the image?", ("0", "3", "2", "1")),
    "IQ_Test": (1, "Which picture should go in the blank?", ("A", "B", "C", "D")),
    "Relative_Depth": (1, "Which point is closer to the camera?", ("A is closer", "B is closer")),
    "Multi-view_Reasoning": (2, "Is the camera moving left or right?", ("left", "right")),
    "Spatial_Relation": (1, "Is the cup on the left of the plate?", ("yes", "no")),
    "Forensic_Detection": (4, "Which image is most likely to be a real photograph?",
                           ("the first image", "the second image", "the third image",
                            "the fourth image")),
    "Functional_Correspondence": (2, "Which point is corresponding to the reference point?",
                                  ("Point A", "Point B", "Point C", "Point D")),
    "Visual_Correspondence": (2, ("Which point on the second image corresponds to the point in "
                                  "the first image?"), ("Point A", "Point B", "Point C", "Point D")),
}


def missing_configs() -> list[str]:
    """The configs of CONFIGS that `builders.miniature.blink` does not write."""
    written = {s.blink_config for s in load_registry().tasks.values() if s.test_source == "blink"}
    return [c for c in CONFIGS if c not in written]


def write(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed + 14)
    top = Path(root) / TOP
    for config in missing_configs():
        k, question, choices = CONFIGS[config]
        (top / config).mkdir(parents=True, exist_ok=True)
        options = "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))
        for split, n in (("val", VAL_ROWS), ("test", TEST_ROWS)):
            rows = []
            for i in range(n):
                images = [{"bytes": _jpeg(rng), "path": None} for _ in range(k)]
                rows.append({
                    "idx": f"{split}_{config}_{i + 1}",
                    "question": question,
                    "sub_task": config.replace("_", " "),
                    **{c: images[j] if j < k else None for j, c in enumerate(IMAGE_COLUMNS)},
                    "choices": list(choices),
                    "answer": f"({LETTERS[i % len(choices)]})" if split == "val" else "hidden",
                    "prompt": f"{question}\nSelect from the following choices.\n{options}",
                    "explanation": "",
                })
            pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA),
                           top / config / f"{split}-00000-of-00001.parquet")
    return top
