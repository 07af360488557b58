"""Image decoding and encoding for builders: one robust loader and one deterministic encoder.

Decoding failures become `UnreadableImage` so a build can skip the file and count it instead of
dying halfway; encoding is deterministic (no timestamps, fixed quality, no optimiser passes whose
output could vary), so the same pixels always give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


class UnreadableImage(Exception):
    """An image file is missing, truncated or not an image; `reason` names the manifest bucket."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))


def load_image(path: str | os.PathLike) -> Image.Image:
    """Decode `path` fully into an RGB image (grayscale and palette images are converted)."""
    p = Path(path)
    if not p.is_file():
        raise UnreadableImage(p, "missing_image")
    try:
        with Image.open(p) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImage(p, "unreadable_image", str(exc)) from exc


def decode_bytes(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.convert("RGB")


def encode_image(img: Image.Image, fmt: str = "jpeg", quality: int = 95) -> bytes:
    """Encode `img` as JPEG (4:4:4, so thin red markers keep their colour) or PNG."""
    buf = io.BytesIO()
    fmt = fmt.lower()
    if fmt in ("jpeg", "jpg"):
        img.convert("RGB").save(buf, format="JPEG", quality=quality, subsampling=0)
    elif fmt == "png":
        img.save(buf, format="PNG", compress_level=6)
    else:
        raise ValueError(f"unknown image_format {fmt!r}; use 'jpeg' or 'png' in tasks.toml [defaults]")
    return buf.getvalue()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def as_array(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.uint8)
