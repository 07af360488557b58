"""Per-image signals: content hashes, a 64-bit pHash and the normalised grayscale views.

Everything here is computed once per image and is cheap next to a CLIP forward pass. The exact
layer keys on `sha256` (file bytes) and `pixel_md5` (decoded RGB pixels, so a lossless re-encode
is still caught); confirmation works on the square grayscale `view` (aspect ratio is dropped on
purpose: a non-uniformly resized copy lines up with its original) and its blurred twin, which
washes out thin drawn boxes, rings and letters.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import imagehash
import numpy as np
from PIL import Image, UnidentifiedImageError

from builders.imaging import UnreadableImage, as_array, decode_bytes, sha256_bytes


@dataclass
class ImageSignals:
    """What the search and the confirmation need of one image; `error` set when undecodable."""

    sha256: str
    pixel_md5: str = ""
    phash: int = -1
    view: np.ndarray | None = None
    view_blur: np.ndarray | None = None
    coarse: np.ndarray | None = None
    size: tuple[int, int] = (0, 0)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def phash64(img: Image.Image | np.ndarray) -> int:
    """imagehash's 64-bit pHash as an int. One implementation for both sides, always: pHash
    variants disagree on the median and the comparison (EVAL_AND_DEDUP_NOTES.md 0.3)."""
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    bits = imagehash.phash(img, hash_size=8).hash.flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def gray_view(img: Image.Image, size: int) -> np.ndarray:
    """Square grayscale view; INTER_AREA so downscaling averages instead of aliasing."""
    gray = cv2.cvtColor(as_array(img), cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)


def blur(view: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(view, (0, 0), sigmaX=sigma, sigmaY=sigma)


def pixel_md5(img: Image.Image) -> str:
    arr = as_array(img)
    h = hashlib.md5(str(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()


# What decoding raises on bad data (truncated, not an image, over the pixel cap): all mean
# "unreadable". `decode_bytes` raises only UnreadableImage; the PIL types are for direct users.
DECODE_ERRORS = (UnreadableImage, UnidentifiedImageError, OSError, SyntaxError, ValueError,
                 EOFError, Image.DecompressionBombError)
COARSE = 32  # side of the coarse blurred view that alignment searches first


def coarse_view(view_blur: np.ndarray) -> np.ndarray:
    return cv2.resize(view_blur, (COARSE, COARSE), interpolation=cv2.INTER_AREA)


def image_signals(data: bytes, view_size: int, blur_sigma: float) -> tuple[ImageSignals, Image.Image | None]:
    """Signals of encoded image bytes, and the decoded image (None when it cannot be decoded)."""
    sig = ImageSignals(sha256=sha256_bytes(data))
    try:
        img = decode_bytes(data)
    except DECODE_ERRORS as exc:
        sig.error = f"{type(exc).__name__}: {exc}"
        return sig, None
    view = gray_view(img, view_size)
    sig.pixel_md5 = pixel_md5(img)
    sig.phash = phash64(img)
    sig.view = view
    sig.view_blur = blur(view, blur_sigma)
    sig.coarse = coarse_view(sig.view_blur)
    sig.size = img.size
    return sig, img
