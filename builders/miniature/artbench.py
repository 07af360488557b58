"""Miniature ArtBench-10 (256x256 ImageFolder split variant): all ten style folders in train/
and test/, small synthetic JPEGs named like WikiArt slugs.

The train styles are deliberately unbalanced (`SHORT_STYLE` has fewer images) so the style-balance
cap has something to cut; the generic tests need 8 train examples (24 images in our train split)
and 2 val examples from the pool.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from builders.miniature import synthetic_image
from builders.sources.artbench import STYLES, TOP

SIZE = 64  # the release is 256x256; the builder never resizes, so small keeps tests fast
PER_STYLE = {"train": 10, "test": 2}
SHORT_STYLE = "ukiyo_e"
SHORT_COUNT = 8


def write(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    top = Path(root) / TOP
    for split, count in PER_STYLE.items():
        for s, style in enumerate(STYLES):
            folder = top / split / style
            folder.mkdir(parents=True, exist_ok=True)
            n = SHORT_COUNT if split == "train" and style == SHORT_STYLE else count
            for k in range(n):
                name = f"artist-{s}-{k % 3}_painting-{split}-{k:02d}.jpg"
                synthetic_image(rng, SIZE, SIZE).save(folder / name, quality=90)
    return top
