"""Reader of the HPatches full image sequences (`hpatches-sequences-release`) for Visual
Correspondence: root discovery, the sequence list, image paths and the homography files.

Format (specs/SOURCE_FORMATS.md section 2): one folder per sequence, `v_*` (viewpoint) or `i_*`
(illumination); images `1.ppm`..`6.ppm` (binary P6, decoded through `BuildContext.load_image`,
sizes may differ within a sequence); `H_1_j` (no extension) holds the 3x3 homography mapping
0-based pixel coordinates (x = column, y = row) of image 1 to image j.

UNCONFIRMED: the exact text formatting of the H files (plain vs scientific notation, leading or
repeated spaces, trailing newline). The parser therefore splits on any whitespace and accepts any
float literal, exactly as `np.loadtxt` does; a file that does not hold 9 finite numbers forming an
invertible matrix stops the build with `HomographyFileError` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from builders.sources import SourceLayoutError

NAME = "hpatches"
# Licence note for the dataset card (builders/card.py).
LICENSE = ("HPatches (hpatches/hpatches-dataset): licence not confirmed here; read the "
           "release's terms before redistributing")
TOP = "hpatches-sequences-release"
KINDS = {"v": "viewpoint", "i": "illumination"}
LAYOUT = """\
<hpatches_root>/            (= hpatches-sequences-release/, or its parent)
  i_ajuntament/  1.ppm .. 6.ppm  H_1_2 H_1_3 H_1_4 H_1_5 H_1_6
  v_boat/        1.ppm .. 6.ppm  H_1_2 .. H_1_6
  ...            (116 folders: 57 i_* illumination, 59 v_* viewpoint)
  H_1_j: 3 lines of 3 whitespace-separated floats mapping image 1 pixels to image j
  (download: huggingface.co/datasets/vbalnt/hpatches, hpatches-sequences-release.zip)
"""


class HomographyFileError(ValueError):
    """An `H_1_j` file is missing or does not hold an invertible 3x3 matrix."""


@dataclass(frozen=True)
class HSequence:
    """One sequence folder; `kind` is "v" (viewpoint) or "i" (illumination)."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def kind(self) -> str:
        return self.name[0]

    def image_path(self, k: int) -> Path:
        return self.path / f"{k}.ppm"

    def image_rel(self, k: int) -> str:
        """The image's path relative to the dataset folder (what `source_images` records)."""
        return f"{self.name}/{k}.ppm"

    def homography_path(self, j: int) -> Path:
        return self.path / f"H_1_{j}"


def _is_sequence(p: Path) -> bool:
    return p.is_dir() and p.name[:2] in {f"{k}_" for k in KINDS}


def find_root(path: Path) -> Path:
    """`path` itself when it holds sequence folders, else `path/hpatches-sequences-release`."""
    path = Path(path)
    for cand in (path, path / TOP):
        if cand.is_dir() and any(_is_sequence(p) for p in cand.iterdir()):
            return cand
    raise SourceLayoutError(NAME, path, f"no v_*/ or i_*/ sequence folders (nor a {TOP}/ holding them)", LAYOUT)


def list_sequences(root: Path) -> list[HSequence]:
    """Every `v_*` and `i_*` folder, sorted by name."""
    return [HSequence(p) for p in sorted(Path(root).iterdir(), key=lambda p: p.name) if _is_sequence(p)]


def read_homography(path: Path) -> np.ndarray:
    """The 3x3 matrix of one `H_1_j` file (any whitespace, plain or scientific notation)."""
    fix = "re-extract hpatches-sequences-release.zip; the file must hold 3 lines of 3 floats"
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise HomographyFileError(f"{path}: cannot read the homography file ({exc}); {fix}") from exc
    tokens = text.split()
    if len(tokens) != 9:
        raise HomographyFileError(f"{path}: expected 9 numbers, found {len(tokens)}; {fix}")
    try:
        H = np.array([float(t) for t in tokens], dtype=np.float64).reshape(3, 3)
    except ValueError as exc:
        raise HomographyFileError(f"{path}: not a number ({exc}); {fix}") from exc
    if not np.all(np.isfinite(H)) or abs(np.linalg.det(H)) < 1e-12:
        raise HomographyFileError(f"{path}: the matrix is not finite and invertible; {fix}")
    return H


def read_homographies(seq: HSequence, indices: list[int]) -> dict[int, np.ndarray]:
    """`H_1_k` for every image index k of the sequence, with `H_1_1` = identity."""
    out = {}
    for k in indices:
        out[k] = np.eye(3) if k == 1 else read_homography(seq.homography_path(k))
    return out


def pair_homography(H1: dict[int, np.ndarray], i: int, j: int) -> np.ndarray:
    """The i -> j homography from the 1 -> k files: H_i_j = H_1_j @ inv(H_1_i)."""
    return H1[j] @ np.linalg.inv(H1[i])
