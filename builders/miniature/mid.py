"""Miniature MID with MIDIntrinsics albedo: the per-scene layout of SOURCE_FORMATS.md section 5.

Each scene has the 25 direction JPEGs `dir_{0..24}_mip2.jpg` (150 x 100, MID's 3:2 landscape,
*named* for mip 2 as the builder loads them), `materials_mip2.png` ('P' mode, ids 0/8/32),
`probes/dir_{d}_gray256.jpg` (32 px, named as the real 256 px probes; never read by the builder)
and, except one, an albedo made of a 2 x 3 grid of constant-colour regions whose linear luminance
is known (`region_luminance`): 0.20 vs 0.21 and 0.60 vs 0.64 are within 10% of each other, the
rest far apart, so both "About the same" and "darker" pairs exist. The JPEGs are that albedo under
a direction-dependent smooth shading, gamma-encoded.

Scenes (which exercise which reader rule):
- `fixture_scene1`: `albedo.exr` (float32 RGB) in its folder, at the top level.
- `fixture_scene2`: 8-bit linear `albedo.png` in its folder, at the top level.
- `fixture_scene3`: nested in `multi_illumination_train_mip2_jpg/` (bulk-zip layout); its
  `albedo.exr` sits in the sibling EXR tree `multi_illumination_train_mip2_exr/fixture_scene3/`.
- `fixture_scene4`: nested; 8-bit `albedo.png` at twice the image resolution (300 x 200).
- `fixture_scene5`: nested; 8-bit `albedo.png`.
- `fixture_scene6`: no albedo anywhere (must be rejected as `no_albedo`).
- `everett_fixture1`: a MID test scene, complete with `albedo.exr` (must never be used).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenEXR
from PIL import Image, ImageDraw

TOP = "mid"
MIP = 2
NUM_DIRECTIONS = 25
IMAGE_SIZE = (150, 100)  # (W, H)
GRID = (2, 3)  # rows, columns of constant-albedo regions, equal-sized
LUMA = np.array([0.2126, 0.7152, 0.0722])
# Linear luminance per region (row-major); scenes use rolled copies so layouts differ.
BASE_LUMINANCE = np.array([[0.20, 0.21, 0.60], [0.64, 0.05, 0.35]])
# Unit-luminance tints (linear RGB) so regions are coloured, not grey.
TINTS = np.array([[1.0, 1.0, 1.0], [1.25, 0.95, 0.75], [0.8, 1.02, 1.3]])
BULK_JPG = "multi_illumination_train_mip2_jpg"
BULK_EXR = "multi_illumination_train_mip2_exr"
BULK_TEST = "multi_illumination_test_mip2_jpg"
# name -> (folder relative to the top, albedo: (kind, folder relative to the top, scale) or None)
SCENES = {
    "fixture_scene1": ("fixture_scene1", ("exr", "fixture_scene1", 1)),
    "fixture_scene2": ("fixture_scene2", ("png", "fixture_scene2", 1)),
    "fixture_scene3": (f"{BULK_JPG}/fixture_scene3", ("exr", f"{BULK_EXR}/fixture_scene3", 1)),
    "fixture_scene4": (f"{BULK_JPG}/fixture_scene4", ("png", f"{BULK_JPG}/fixture_scene4", 2)),
    "fixture_scene5": (f"{BULK_JPG}/fixture_scene5", ("png", f"{BULK_JPG}/fixture_scene5", 1)),
    "fixture_scene6": ("fixture_scene6", None),
    "everett_fixture1": (
        f"{BULK_TEST}/everett_fixture1", ("exr", f"{BULK_TEST}/everett_fixture1", 1)
    ),
}


def _region_colours(index: int) -> np.ndarray:
    """Linear RGB per region (rows, cols, 3) of the index-th scene, before any 8-bit rounding."""
    lum = np.roll(BASE_LUMINANCE.ravel(), index).reshape(GRID)
    tints = TINTS[(np.arange(lum.size) + index) % len(TINTS)].reshape(*GRID, 3)
    tints = tints / (tints @ LUMA)[..., None]
    return lum[..., None] * tints


def stored_colours(name: str) -> np.ndarray:
    """The region colours exactly as the scene's albedo file stores them (8-bit for PNG)."""
    colours = _region_colours(list(SCENES).index(name))
    albedo = SCENES[name][1]
    return np.round(colours * 255) / 255 if albedo and albedo[0] == "png" else colours


def region_luminance(name: str) -> np.ndarray:
    """Known truth: Rec. 709 luminance (rows, cols) of each region as stored, read linear."""
    return stored_colours(name) @ LUMA


def region_of(col: np.ndarray, row: np.ndarray, size: tuple[int, int]) -> tuple:
    """(region row, region col) of pixels (col, row) of an image of `size` = (W, H)."""
    w, h = size
    return (np.asarray(row) * GRID[0]) // h, (np.asarray(col) * GRID[1]) // w


def _region_map(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`values` (rows, cols, ...) painted over an image of `size` = (W, H)."""
    w, h = size
    rows, cols = region_of(np.arange(w)[None, :], np.arange(h)[:, None], size)
    return values[rows, cols]


def _shading(direction: int, size: tuple[int, int]) -> np.ndarray:
    """A smooth light falloff from a direction-dependent light position."""
    w, h = size
    angle = 2 * np.pi * direction / NUM_DIRECTIONS
    lx, ly = w * (0.5 + 0.45 * np.cos(angle)), h * (0.5 + 0.45 * np.sin(angle))
    yy, xx = np.mgrid[0:h, 0:w]
    dist = np.hypot(xx - lx, yy - ly) / np.hypot(w, h)
    return 0.35 + 1.1 * np.exp(-3.0 * dist**2)


def _write_exr(path: Path, rgb: np.ndarray) -> None:
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, {"RGB": rgb.astype(np.float32)}).write(str(path))


def _write_scene(top: Path, name: str, shading: list[np.ndarray], rng: np.random.Generator) -> None:
    folder_rel, albedo = SCENES[name]
    folder = top / folder_rel
    (folder / "probes").mkdir(parents=True, exist_ok=True)
    colours = stored_colours(name)
    linear = _region_map(colours, IMAGE_SIZE)
    for d in range(NUM_DIRECTIONS):
        lit = linear * shading[d][..., None] + rng.normal(0, 0.004, linear.shape)
        srgb = np.clip(lit, 0, 1) ** (1 / 2.2)
        Image.fromarray(np.round(srgb * 255).astype(np.uint8)).save(
            folder / f"dir_{d}_mip{MIP}.jpg", quality=90)
        probe = Image.new("L", (32, 32), 0)
        ImageDraw.Draw(probe).ellipse((2, 2, 29, 29), fill=int(90 + 6 * (d % 25)))
        probe.convert("RGB").save(folder / "probes" / f"dir_{d}_gray256.jpg", quality=90)
    ids = np.array([[0, 8, 32], [8, 32, 0]], dtype=np.uint8)
    materials = Image.frombytes("P", IMAGE_SIZE, _region_map(ids, IMAGE_SIZE).tobytes())
    materials.putpalette([v for i in range(256) for v in ((i * 7) % 256, (i * 3) % 256, i)])
    materials.save(folder / f"materials_mip{MIP}.png")
    if albedo is None:
        return
    kind, albedo_rel, scale = albedo
    (top / albedo_rel).mkdir(parents=True, exist_ok=True)
    rgb = _region_map(colours, (IMAGE_SIZE[0] * scale, IMAGE_SIZE[1] * scale))
    if kind == "exr":
        _write_exr(top / albedo_rel / "albedo.exr", rgb)
    else:
        Image.fromarray(np.round(rgb * 255).astype(np.uint8)).save(top / albedo_rel / "albedo.png")


def write(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    top = Path(root) / TOP
    shading = [_shading(d, IMAGE_SIZE) for d in range(NUM_DIRECTIONS)]
    for name in SCENES:
        _write_scene(top, name, shading, rng)
    return top
