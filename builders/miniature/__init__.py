"""Miniature, format-exact copies of the raw datasets, generated in code for tests and the demo.

Each module `builders/miniature/<source>.py` has `write(root, seed=0) -> Path`, which creates the
dataset's top folder under `root` exactly as the real release lays it out and returns that folder.
Nothing here is downloaded or committed; the same seed writes the same bytes.
`write_all(root)` writes every source this version has a generator for. A source whose `write`
also takes `scale` (an integer multiple of its default row counts: PixMo-Count, which
`harness demo` trains and tests on by the hundred) gets it from `scales`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from builders.schema import check_keys


def synthetic_image(rng: np.random.Generator, width: int, height: int, shapes: int = 6) -> Image.Image:
    """A textured image: a smooth random colour field plus random shapes, so crops differ,
    JPEG behaves as on photos, and near-duplicate signals have something to see."""
    low = rng.uniform(0, 255, size=(4, 4, 3)).astype(np.uint8)
    base = Image.fromarray(low, "RGB").resize((width, height), Image.BICUBIC)
    noise = rng.normal(0, 12, size=(height, width, 3))
    arr = np.clip(np.asarray(base, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(shapes):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        w, h = rng.uniform(0.05, 0.35) * width, rng.uniform(0.05, 0.35) * height
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        box = (x0, y0, x0 + w, y0 + h)
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return img


def sources() -> list[str]:
    pkg = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(pkg)]))


def write(source: str, root: Path, seed: int = 0, scale: int = 1) -> Path:
    module = importlib.import_module(f"builders.miniature.{source}")
    if scale == 1:
        return module.write(Path(root), seed)
    return module.write(Path(root), seed, scale=scale)


def write_all(root: Path, seed: int = 0, scales: Mapping[str, int] | None = None,
              ) -> dict[str, Path]:
    """Every source; `scales` maps a source to its `scale` (sources not named get 1)."""
    scales = dict(scales or {})
    check_keys(scales, sources(), "write_all scales", ValueError, what="source")
    return {s: write(s, root, seed, scales.get(s, 1)) for s in sources()}
