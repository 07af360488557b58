"""Synthetic inputs for the livr_core tests: random images and a BLINK-like two-image sample."""

from __future__ import annotations

import numpy as np
from PIL import Image

from livr_core.encoding import Sample

K = 4  # small K keeps the tiny forwards fast; the code paths are the same as K=16
PROMPT = "Which image is brighter? (A) left (B) right"


def random_image(seed: int, width: int = 84, height: int = 56) -> Image.Image:
    pixels = np.random.RandomState(seed).randint(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def two_image_sample(seed: int, answer: str = "(B)", sample_id: str = "ex") -> Sample:
    """Two images of fixed sizes (84x56, 56x56); the seed changes only the pixels."""
    return Sample(
        images=[random_image(seed), random_image(seed + 1, 56, 56)],
        prompt=PROMPT,
        answer=answer,
        id=sample_id,
    )
