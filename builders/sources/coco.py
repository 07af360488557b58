"""Reader of COCO 2017 (images and instances annotations) for Jigsaw and Object Localization."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from builders.sources import SourceLayoutError, locate

if TYPE_CHECKING:
    from pycocotools.coco import COCO

NAME = "coco"
# Licence note for the dataset card (builders/card.py).
LICENSE = ("COCO 2017: annotations CC BY 4.0; images under the Flickr terms of each image "
           "(cocodataset.org/#termsofuse)")
IMAGE_DIRS = ("train2017", "val2017")
LAYOUT = """\
<coco_root>/
  annotations/instances_train2017.json
  annotations/instances_val2017.json
  train2017/000000000009.jpg ...   (file name = image id, 12 digits)
  val2017/000000000139.jpg ...
"""


@dataclass(frozen=True)
class CocoImage:
    folder: str  # "train2017" or "val2017"
    path: Path

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def rel(self) -> str:
        return f"{self.folder}/{self.path.name}"


def find_root(path: Path) -> Path:
    root = locate(path, "train2017", ("coco", "coco2017")) or locate(path, "val2017", ("coco", "coco2017"))
    if root is None:
        raise SourceLayoutError(NAME, Path(path), "no train2017/ or val2017/ image folder", LAYOUT)
    return root


def list_images(root: Path) -> list[CocoImage]:
    """Every JPEG of train2017 and val2017, in a stable (sorted) order."""
    out = []
    for folder in IMAGE_DIRS:
        d = root / folder
        if d.is_dir():
            out.extend(CocoImage(folder, p) for p in sorted(d.glob("*.jpg")))
    if not out:
        raise SourceLayoutError(NAME, root, "no *.jpg images in train2017/ or val2017/", LAYOUT)
    return out


def instance_files(root: Path) -> list[tuple[str, Path]]:
    found = [(f, root / "annotations" / f"instances_{f}.json") for f in IMAGE_DIRS]
    found = [(f, p) for f, p in found if p.is_file()]
    if not found:
        raise SourceLayoutError(NAME, root, "no annotations/instances_*2017.json", LAYOUT)
    return found


class CocoAnnotationError(ValueError):
    """An instances file that cannot be used at all (not JSON, or missing a field COCO indexes)."""


@dataclass(frozen=True, eq=False)
class InstanceImage:
    """One `images` row of an instances file, with the COCO index that holds its annotations."""

    folder: str  # "train2017" or "val2017"
    info: dict
    index: COCO

    @property
    def image_id(self) -> int:
        return int(self.info["id"])

    @property
    def rel(self) -> str:
        return f"{self.folder}/{self.info['file_name']}"

    def annotations(self) -> list[dict]:
        """Its annotations in ascending annotation id, so selection does not depend on file order."""
        return sorted(self.index.imgToAnns.get(self.image_id, []), key=lambda a: a["id"])


REQUIRED_KEYS = ("images", "annotations", "categories")


def read_instances(path: Path) -> COCO:
    """The COCO index of one instances file; a file unusable as a whole (not JSON, a top-level
    `images` / `annotations` / `categories` list missing, a row without a field COCO indexes)
    raises `CocoAnnotationError` naming the file, the problem and the fix. pycocotools alone
    would index a file without `annotations` as an image set with no objects."""
    fix = "re-extract annotations_trainval2017.zip into <coco_root>/annotations/"
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CocoAnnotationError(f"{path}: not valid JSON ({exc}); {fix}") from exc
    if not isinstance(doc, dict):
        raise CocoAnnotationError(f"{path}: not a COCO instances file (top level is not an "
                                  f"object); {fix}")
    for key in REQUIRED_KEYS:
        if not isinstance(doc.get(key), list):
            problem = "has no" if key not in doc else "has a non-list"
            raise CocoAnnotationError(
                f"{path}: {problem} top-level {key!r} list (an instances file has "
                f"{', '.join(REQUIRED_KEYS)}); {fix}")
    from pycocotools.coco import COCO  # here: `build-task --help` reads LAYOUT without it

    index = COCO()
    index.dataset = doc
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress chatter
            index.createIndex()
    except KeyError as exc:
        raise CocoAnnotationError(
            f"{path}: a row lacks the field {exc.args[0]!r} that every images/annotations/"
            f"categories row must have; {fix}"
        ) from exc
    except (TypeError, AttributeError) as exc:
        raise CocoAnnotationError(f"{path}: not a COCO instances file ({exc}); {fix}") from exc
    return index


def instance_images(root: Path) -> list[InstanceImage]:
    """Every image row of instances_train2017.json and instances_val2017.json (pooled), in
    ascending (image id, folder) order."""
    out = []
    for folder, path in instance_files(root):
        index = read_instances(path)
        out.extend(InstanceImage(folder, info, index) for info in index.imgs.values())
    return sorted(out, key=lambda im: (im.image_id, im.folder))
