"""Reader of ArtBench-10, 256x256 ImageFolder variant with train/test split, for Art Style.

The style of an image is the name of its folder (torchvision ImageFolder semantics). Every
sub-folder of the split that holds images is a style, so the reader does not hard-code the ten
names (`STYLES` documents them); file names are not parsed (their pattern is UNCONFIRMED,
SOURCE_FORMATS.md section 6). Images are JPEG in the release; `.jpeg` and `.png` are accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builders.sources import SourceLayoutError, locate

NAME = "artbench"
# Licence note for the dataset card (builders/card.py).
LICENSE = ("ArtBench-10: images under the 'fair use' terms of WikiArt, Ukiyo-e.org and The "
           "Surrealism Website; other artifacts MIT")
TOP = "artbench-10-imagefolder-split"
# Sorted order = ImageFolder class index 0..9.
STYLES = (
    "art_nouveau", "baroque", "expressionism", "impressionism", "post_impressionism", "realism",
    "renaissance", "romanticism", "surrealism", "ukiyo_e",
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
LAYOUT = f"""\
{TOP}/          (artbench-10-imagefolder-split.tar)
  train/<style>/<name>.jpg      256x256 RGB, 5,000 per style
  test/<style>/<name>.jpg       1,000 per style
  <style> is one of: {", ".join(STYLES[:5])},
                    {", ".join(STYLES[5:])}
"""


@dataclass(frozen=True)
class ArtImage:
    style: str
    path: Path
    rel: str  # path relative to the dataset folder, e.g. "train/baroque/x.jpg"


def find_root(path: Path) -> Path:
    root = locate(path, "train", (TOP,)) or locate(path, "test", (TOP,))
    if root is None:
        raise SourceLayoutError(NAME, Path(path), "no train/ or test/ split folder", LAYOUT)
    return root


def list_images(root: Path, split: str) -> dict[str, list[ArtImage]]:
    """Style -> its images in `split`, styles and files in sorted order."""
    folder = root / split
    out: dict[str, list[ArtImage]] = {}
    if folder.is_dir():
        for style_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            files = sorted(
                p for p in style_dir.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if files:
                out[style_dir.name] = [
                    ArtImage(style_dir.name, p, f"{split}/{style_dir.name}/{p.name}") for p in files
                ]
    if len(out) < 2:
        raise SourceLayoutError(
            NAME, root, f"fewer than two style folders with images in {split}/", LAYOUT
        )
    return out
