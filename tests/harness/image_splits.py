"""Small built splits with real images, for the tests that run tiny models (no model downloads).

Each example has two 56x56 PNG images (four image tokens each on tiny-qwen2.5-vl); the answer is
the red one, so a task is well defined, though a tiny model learns little in two epochs. Prompts
are short because the tiny tokenizer spends one token per byte.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from builders.io import split_dir, write_records
from builders.record import Record, make_idx
from builders.registry import load_registry

SIDE = 56
PROMPT = "Which image is red?\n(A) the first image\n(B) the second image"


def png(seed: int, red: bool) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 120, (SIDE, SIDE, 3), dtype=np.uint8)
    if red:
        pixels[..., 0] = 255
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def records(task: str, split: str, n: int, seed: int = 0) -> list[Record]:
    spec = load_registry().resolve(task)
    out = []
    for i in range(1, n + 1):
        first_red = (i + seed) % 2 == 0
        out.append(Record(
            idx=make_idx(spec, split, i), question="Which image is red?", sub_task=spec.sub_task,
            images=[png(1000 * seed + 10 * i, first_red), png(1000 * seed + 10 * i + 1,
                                                             not first_red)],
            choices=["the first image", "the second image"],
            answer="(A)" if first_red else "(B)", prompt=PROMPT, explanation="",
            task=spec.name, split=split, source="{}",
        ))
    return out


def write_image_splits(root: Path, tasks: Iterable[str], sizes: dict[str, int]) -> Path:
    """Splits <root>/<task>/<split>/ with a manifest (the planner reads sizes and digests)."""
    for task in tasks:
        for k, (split, n) in enumerate(sizes.items()):
            rows = records(task, split, n, seed=k)
            manifest = {"task": task, "split": split, "n": n,
                        "records": [{"idx": r.idx, "answer": r.answer} for r in rows]}
            write_records(rows, split_dir(root, task, split), manifest)
    return root
