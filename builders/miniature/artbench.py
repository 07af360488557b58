"""Miniature ArtBench-10 (256x256 ImageFolder split variant): all ten style folders in train/
and test/, small synthetic JPEGs named like WikiArt slugs.

Each style has a palette (`painting`): a saturated colour of its own under pixel noise, with a few
darker blobs of the same hue. Two paintings of one style share the colour and nothing else, so the
Art Style task ("which image shares the reference's style?") is answerable from the pixels, as on
the real release, and learnable by the demo's tiny model; the BLINK miniature draws its Art_Style
rows with the same function.

The train styles are deliberately unbalanced (`SHORT_STYLE` has fewer images) so the style-balance
cap has something to cut; the generic tests need 8 train examples (24 images in our train split)
and 2 val examples from the pool.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from builders.sources.artbench import STYLES, TOP

SIZE = 64  # the release is 256x256; the builder never resizes, so small keeps tests fast
PER_STYLE = {"train": 10, "test": 2}
SHORT_STYLE = "ukiyo_e"
SHORT_COUNT = 8
# One colour per style (STYLES order), far apart in RGB so any two styles differ at a glance.
PALETTES = ((220, 40, 40), (40, 180, 40), (40, 60, 220), (230, 200, 30), (200, 60, 200),
            (30, 200, 200), (240, 140, 20), (120, 70, 30), (250, 250, 250), (20, 20, 20))
NOISE_STD = 18.0  # per-pixel noise: no two paintings of a style are alike
BLOBS = 3  # darker blobs at random places: some structure beyond the colour


def painting(rng: np.random.Generator, style: int, width: int = SIZE,
             height: int = SIZE) -> Image.Image:
    """A painting of style number `style` (an index into `STYLES` / `PALETTES`)."""
    base = np.array(PALETTES[style], dtype=np.float64)
    arr = np.clip(base + rng.normal(0, NOISE_STD, (height, width, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(BLOBS):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        side = rng.uniform(0.06, 0.25) * min(width, height)
        colour = tuple(int(c) for c in np.clip(base * 0.6 + rng.normal(0, 30, 3), 0, 255))
        draw.ellipse((x, y, x + side, y + side), fill=colour)
    return img


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
                painting(rng, s).save(folder / name, quality=90)
    return top
