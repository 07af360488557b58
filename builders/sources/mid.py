"""Reader of MID (Multi-Illumination Dataset) scenes and their MIDIntrinsics albedo, for Relative
Reflectance (SOURCE_FORMATS.md section 5).

Owns: finding the scene folders under a root, the path of a scene's JPEG for one light direction,
finding the scene's albedo, and decoding that albedo to linear RGB.

The albedo is LINEAR (confirmed; `albedo_png_is_srgb = false` in tasks.toml follows from this):
- compphoto/MIDIntrinsics README.md (github.com/compphoto/MIDIntrinsics, text unchanged from
  2023-11-16 to the 2025-04-08 head): "We provide the linear albedo images created from the HDR
  images in the dataset after white-balancing and tonemapping"; the archives
  `midi_{train,test}_albedo.zip` are unzipped into the extracted MID *EXR* trees
  (`multi_illumination_{train,test}_mip2_exr/`); "Since the albedo is linear, you must undo the
  gamma correction on the JPEG images before dividing by the albedo: shading = (img ** 2.2) /
  albedo".
- MIDIntrinsics generate_albedo.py: by default `imageio.imwrite('<scene>/albedo.exr', median
  albedo)` (float, linear); with `--png`, `np_to_pil(albedo / albedo.max())` to `albedo.png`,
  where chrislib's `np_to_pil` (github.com/CCareaga/chrislib, chrislib/data_util.py) is
  `(img * 255).astype(np.uint8)`: 8 bits, no transfer curve, still linear.
- Third-party loaders of the released data read `<scene>/albedo.exr` beside `dir_*_mip2.exr`
  and divide linear frames by it (shading = I / A), i.e. treat it as linear.
So the paper's "converting the albedo to linear RGB" (A.8) is the identity on these files: EXR is
read as is, and an 8-bit `albedo.png` is read as linear unless `albedo_png_is_srgb` says it was
display-encoded (an option for albedo PNGs made some other way).

Layout facts still UNCONFIRMED and what this reader does about them:
- Whether the bulk zips add a top-level folder (`multi_illumination_train_mip2_jpg/<scene>/`):
  scene folders are found at any depth, as the folders that hold `dir_0_mip<mip>.jpg`.
- Where the albedo sits: MIDIntrinsics' archives are meant to be unzipped into the extracted MID
  *EXR* tree, which may be a sibling of the JPEG tree. A scene's albedo is taken from its JPEG
  folder when there, else from the first (sorted) other folder of the same scene name under the
  root.
- Which file the zips hold: `albedo.exr` (the script's default, and what third-party loaders read)
  is preferred; an 8-bit (or 16-bit) `albedo.png` is read too. Non-finite and negative EXR values
  (possible where the decomposition divided by ~0) are set to 0.
EXR is decoded with the `OpenEXR` package: the registry's OpenCV cannot read EXR.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from builders.imaging import UnreadableImage, check_header, check_pixels
from builders.sources import SourceLayoutError

NAME = "mid"
# Licence note for the dataset card (builders/card.py).
LICENSE = ("Multi-Illumination Dataset: CC BY 4.0 per the project page (reported by a third "
           "party); MIDIntrinsics albedo: see compphoto/MIDIntrinsics")
# Preference order when a folder holds both.
ALBEDO_NAMES = ("albedo.exr", "albedo.png")
LAYOUT = """\
<mid_root>/                       scene folders are found at any depth below it, e.g. in
                                  multi_illumination_train_mip2_jpg/ (bulk zip) or directly
  <scene>/                        e.g. main_experiment120; "everett*" scenes are MID's test split
    dir_0_mip2.jpg ... dir_24_mip2.jpg   25 light directions, sRGB JPEG (mip level: params.mip)
    materials_mip2.png, probes/          (not read)
    albedo.exr | albedo.png              MIDIntrinsics albedo (linear), or in a folder of the same
                                         scene name elsewhere below <mid_root>, e.g.
                                         multi_illumination_train_mip2_exr/<scene>/albedo.exr
"""


def image_name(direction: int, mip: int) -> str:
    """MID's file name of one light direction: `dir_<d>_mip<m>.jpg`."""
    return f"dir_{direction}_mip{mip}.jpg"


@dataclass(frozen=True)
class Scene:
    name: str
    folder: Path
    albedo: Path | None

    def image(self, direction: int, mip: int) -> Path:
        return self.folder / image_name(direction, mip)


def list_scenes(root: Path, mip: int) -> list[Scene]:
    """Every folder below `root` holding `dir_0_mip<mip>.jpg`, sorted by (name, folder), each with
    its albedo or None. Two folders with one scene name are both listed (the caller keeps one)."""
    root = Path(root)
    marker = image_name(0, mip)
    scene_dirs: list[Path] = []
    albedo_dirs: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        if marker in filenames:
            scene_dirs.append(here)
        if any(n in filenames for n in ALBEDO_NAMES):
            albedo_dirs.setdefault(here.name, []).append(here)
    if not scene_dirs:
        raise SourceLayoutError(NAME, root, f"no scene folder holding {marker}", LAYOUT)
    scenes = []
    for folder in scene_dirs:
        others = sorted(d for d in albedo_dirs.get(folder.name, []) if d != folder)
        scenes.append(Scene(folder.name, folder, _albedo_in([folder, *others])))
    return sorted(scenes, key=lambda s: (s.name, str(s.folder)))


def _albedo_in(folders: list[Path]) -> Path | None:
    for folder in folders:
        for name in ALBEDO_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """The sRGB transfer function inverted (IEC 61966-2-1), for values in [0, 1]."""
    v = np.asarray(v, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def read_albedo(path: Path, png_is_srgb: bool) -> np.ndarray:
    """The albedo as linear RGB, float32 (H, W, 3). EXR is linear already; PNG is scaled to
    [0, 1] and converted from sRGB when `png_is_srgb`. Raises `UnreadableImage` (reason
    `unreadable_albedo`) when the file cannot be decoded."""
    path = Path(path)
    return _read_exr(path) if path.suffix.lower() == ".exr" else _read_png(path, png_is_srgb)


def _read_exr(path: Path) -> np.ndarray:
    import OpenEXR  # here, like cv2 below: `build-task --help` reads LAYOUT without them

    try:
        (x0, y0), (x1, y1) = OpenEXR.File(str(path), header_only=True).header()["dataWindow"]
        check_pixels(path, int(x1) - int(x0) + 1, int(y1) - int(y0) + 1)  # before decoding
        channels = OpenEXR.File(str(path)).channels()
    except (RuntimeError, OSError, KeyError, TypeError, ValueError) as exc:
        raise UnreadableImage(path, "unreadable_albedo", str(exc)) from exc
    # OpenEXR groups R, G, B (and A) into one "RGB"/"RGBA" entry; a grey albedo has only "Y".
    if "RGB" in channels:
        px = channels["RGB"].pixels
    elif "RGBA" in channels:
        px = channels["RGBA"].pixels[..., :3]
    elif "Y" in channels:
        px = np.repeat(channels["Y"].pixels[..., None], 3, axis=2)
    else:
        raise UnreadableImage(path, "unreadable_albedo", f"no RGB or Y channel: {sorted(channels)}")
    rgb = np.array(px, dtype=np.float32)  # a writable copy, cleaned in place
    np.nan_to_num(rgb, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return np.maximum(rgb, 0.0, out=rgb)


def _read_png(path: Path, is_srgb: bool) -> np.ndarray:
    import cv2

    check_header(path)  # the pixel cap, before OpenCV decodes
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    channels = None if raw is None else 1 if raw.ndim == 2 else raw.shape[2]
    to_rgb = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}.get(channels)
    if to_rgb is None or raw.dtype not in (np.uint8, np.uint16):
        raise UnreadableImage(path, "unreadable_albedo", "not an 8- or 16-bit grey/RGB(A) PNG")
    v = cv2.cvtColor(raw, to_rgb).astype(np.float32)
    v /= np.iinfo(raw.dtype).max
    return srgb_to_linear(v) if is_srgb else v
