"""Image decoding and encoding: the one loader every reader of ours uses, and one deterministic
encoder.

Every image we decode (source files in the builders, downloaded bodies, built splits in dedup
and the harness) goes through `load_image` or `decode_bytes`. Both read the header first and
refuse an image of more than `max_image_pixels` pixels (tasks.toml `[defaults]`) before any
pixel is decoded, so a decompression bomb (a small file declaring a huge size) costs neither
memory nor time; PIL's own bomb error counts the same. Every failure, bombs included, is an
`UnreadableImage` whose `reason` names the manifest bucket (`missing_image`,
`unreadable_image`, `image_too_large`), so a build can skip the file and count it instead of
dying halfway. Encoding is deterministic (no timestamps, fixed quality, no optimiser passes
whose output could vary), so the same pixels always give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError

from builders.registry import load_registry

MISSING = "missing_image"
UNREADABLE = "unreadable_image"
TOO_LARGE = "image_too_large"
# What PIL raises on bad data (truncated, not an image): all mean "unreadable".
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError)


class UnreadableImage(Exception):
    """An image file is missing, truncated, too large or not an image; `reason` names the
    manifest bucket."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))


def max_image_pixels() -> int:
    """The pixel cap of every decode (`max_image_pixels` in tasks.toml `[defaults]`)."""
    return load_registry().defaults.max_image_pixels


def check_pixels(name: str | os.PathLike, width: int, height: int) -> None:
    """Raise `UnreadableImage` (reason `image_too_large`) when width x height is over the cap;
    for readers that are not PIL (OpenCV, OpenEXR): call it with the header's size first."""
    cap = max_image_pixels()
    if width * height > cap:
        raise UnreadableImage(name, TOO_LARGE, f"{width}x{height} = {width * height:,} pixels, "
                              f"over max_image_pixels = {cap:,} in tasks.toml [defaults]")


@contextmanager
def _opened(source: IO[bytes] | Path, name: str | os.PathLike) -> Iterator[Image.Image]:
    """The image with only its header read, checked against the cap; any decode error in the
    block becomes `UnreadableImage`."""
    try:
        with Image.open(source) as im:
            check_pixels(name, *im.size)
            yield im
    except Image.DecompressionBombError as exc:
        raise UnreadableImage(name, TOO_LARGE, str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise UnreadableImage(name, UNREADABLE, f"{type(exc).__name__}: {exc}") from exc


def _rgb(source: IO[bytes] | Path, name: str | os.PathLike, mode: str = "RGB") -> Image.Image:
    with _opened(source, name) as im:
        im.load()
        return im.convert(mode)


def load_image(path: str | os.PathLike, mode: str = "RGB") -> Image.Image:
    """Decode `path` fully into an RGB image (grayscale and palette images are converted; `mode`
    asks for another PIL mode, e.g. "RGBA" for sprites with transparency)."""
    p = Path(path)
    if not p.is_file():
        raise UnreadableImage(p, MISSING)
    return _rgb(p, p, mode)


def decode_bytes(data: bytes, name: str = "<image bytes>") -> Image.Image:
    """Decode encoded image bytes into RGB; `name` says where they came from in errors."""
    return _rgb(io.BytesIO(data), name)


def identify_bytes(data: bytes, name: str = "<image bytes>") -> None:
    """Read only the header of encoded image bytes: `UnreadableImage` when PIL cannot identify
    them or they declare more pixels than the cap (for pass-through rows kept as released, where
    fully decoding every image would dominate a build)."""
    with _opened(io.BytesIO(data), name):
        pass


def check_header(path: str | os.PathLike) -> None:
    """Refuse (`UnreadableImage`, reason `image_too_large`) a file whose header declares more
    pixels than the cap, for files another library decodes (OpenCV's 16-bit PNGs); a file PIL
    cannot identify is left to that library to judge."""
    try:
        with _opened(Path(path), path):
            pass
    except UnreadableImage as exc:
        if exc.reason == TOO_LARGE:
            raise


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
