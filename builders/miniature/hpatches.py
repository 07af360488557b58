"""Miniature HPatches sequences: `hpatches-sequences-release/` with 10 `v_*` and 10 `i_*` folders.

Each folder holds `1.ppm`..`6.ppm` (binary P6) and `H_1_2`..`H_1_6`. Viewpoint sequences: image j
is image 1 warped by a known random homography (rotation, scale, shift and perspective growing with
j) with `cv2.warpPerspective`; reflected borders keep every pixel a function of image 1, so colour
at a point in image i equals colour at its homography image in image j. `v_fixture00` has a
different size for every image and both `*_fixture01` are portrait. Illumination sequences: identity
homographies, image j is image 1 under a gain ramp and an offset. H files alternate `%.8e` and
`%.6f` formatting with irregular spacing; the images are warped with the matrix as written, so the
files are the exact truth. 10 + 10 sequences give every 80/10/10 split one sequence of each kind.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from builders.miniature import synthetic_image

TOP = "hpatches-sequences-release"
PER_KIND = 10
SIZE = (160, 120)
# v_fixture00: one size per image 1..6, so pairs of differently sized images are exercised.
VARYING_SIZES = [(160, 120), (176, 132), (144, 112), (168, 124), (152, 116), (184, 136)]


def _format_h(H: np.ndarray, scientific: bool) -> str:
    if scientific:
        return "\n".join(" ".join(f"{v:.8e}" for v in row) for row in H) + "\n"
    # leading and doubled spaces, no trailing newline: the parser must split on any whitespace
    return "\n".join("  " + "  ".join(f"{v:.6f}" for v in row) for row in H)


def _random_homography(rng: np.random.Generator, j: int, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    """A viewpoint change that grows with j: about the image centre, then recentred on dst."""
    t = (j - 1) / 5
    angle = np.deg2rad(rng.uniform(-12, 12) * t)
    scale = 1 + rng.uniform(-0.15, 0.15) * t
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    A = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    P = np.array([[1, 0, 0], [0, 1, 0], [rng.uniform(-8e-4, 8e-4) * t, rng.uniform(-8e-4, 8e-4) * t, 1]])
    shift = rng.uniform(-0.06, 0.06, size=2) * np.array(dst) * t
    to_origin = np.array([[1, 0, -src[0] / 2], [0, 1, -src[1] / 2], [0, 0, 1]])
    back = np.array([[1, 0, dst[0] / 2 + shift[0]], [0, 1, dst[1] / 2 + shift[1]], [0, 0, 1]])
    H = back @ P @ A @ to_origin
    return H / H[2, 2]


def _save_ppm(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr, "RGB").save(path, format="PPM")  # PIL writes binary P6 for RGB


def _write_sequence(folder: Path, rng: np.random.Generator, kind: str, sizes: list[tuple[int, int]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    first = np.asarray(synthetic_image(rng, *sizes[0], shapes=12))
    _save_ppm(first, folder / "1.ppm")
    for j in range(2, 7):
        if kind == "v":
            H = _random_homography(rng, j, sizes[0], sizes[j - 1])
        else:
            H = np.eye(3)
        text = _format_h(H, scientific=j % 2 == 0)
        (folder / f"H_1_{j}").write_text(text)
        H_written = np.array(text.split(), dtype=np.float64).reshape(3, 3)
        if kind == "v":
            img = cv2.warpPerspective(first, H_written, sizes[j - 1], flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REFLECT_101)
        else:
            ramp = np.linspace(rng.uniform(0.6, 1.0), rng.uniform(1.0, 1.4), sizes[0][0])[None, :, None]
            img = np.clip(first * ramp + rng.uniform(-25, 25), 0, 255).astype(np.uint8)
        _save_ppm(img, folder / f"{j}.ppm")


def write(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    top = Path(root) / TOP
    for kind in ("i", "v"):
        for k in range(PER_KIND):
            if kind == "v" and k == 0:
                sizes = VARYING_SIZES
            elif k == 1:
                sizes = [SIZE[::-1]] * 6
            else:
                sizes = [SIZE] * 6
            _write_sequence(top / f"{kind}_fixture{k:02d}", rng, kind, sizes)
    return top
