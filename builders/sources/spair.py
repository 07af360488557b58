"""Reader of SPair-71k: the layout lists and the pair annotations (specs/SOURCE_FORMATS.md §3).

A layout line `<pair id>-<src stem>-<trg stem>:<category>` names both images
(`JPEGImages/<category>/<stem>.jpg`) and the pair file `PairAnnotation/<split>/<line>.json`, whose
name contains the colon. From a pair file this reader keeps what correspondence needs: the
index-aligned `src_kps` / `trg_kps` ([[x, y], ...] pixels of the original images), `kps_ids` and
the image sizes `src_imsize` / `trg_imsize` ([w, h, c]).

Tolerated because UNCONFIRMED or seen in copies of the release: `kps_ids` as strings ("7") or
ints (7); a keypoint entry that is null or has null coordinates (read as NaN: invalid, never a
crash); absent `*_imsize` (the decoded image's size is then the only size). A pair file that is
missing or unusable raises `BadPair` with the manifest reason, so the build counts it and goes on.
`ImageAnnotation/` and `Segmentation/` are not read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from builders.sources import SourceLayoutError, locate

NAME = "spair"
# Licence note for the dataset card (builders/card.py).
LICENSE = ("SPair-71k: images from PASCAL VOC / Flickr under their own terms; annotations "
           "for research use (licence not confirmed here)")
LAYOUT = """\
<SPair-71k>/
  JPEGImages/<category>/<stem>.jpg
  Layout/large/{trn,val,test}.txt     one pair per line: <pair id>-<src stem>-<trg stem>:<category>
  PairAnnotation/{trn,val,test}/<line>.json   (the layout line + .json; the name contains ':')
  ImageAnnotation/<category>/<stem>.json      (not needed)
"""


class BadPair(ValueError):
    """A pair whose annotation cannot be used; `reason` names the manifest bucket."""

    def __init__(self, path: Path, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class PairRef:
    """One layout line."""

    name: str  # the line itself, e.g. "000009-2008_001546-2009_000327:aeroplane"
    pair_id: str
    src_stem: str
    trg_stem: str
    category: str

    @property
    def src_image(self) -> str:
        return f"JPEGImages/{self.category}/{self.src_stem}.jpg"

    @property
    def trg_image(self) -> str:
        return f"JPEGImages/{self.category}/{self.trg_stem}.jpg"

    def annotation(self, split: str) -> str:
        return f"PairAnnotation/{split}/{self.name}.json"


@dataclass(frozen=True)
class PairAnnotation:
    ref: PairRef
    src_kps: np.ndarray  # (N, 2) float pixels, NaN where an entry is null
    trg_kps: np.ndarray  # (N, 2), index-aligned with src_kps
    kps_ids: tuple[int, ...]
    src_size: tuple[int, int] | None  # (width, height) from src_imsize
    trg_size: tuple[int, int] | None


def find_root(path: Path) -> Path:
    root = locate(path, "PairAnnotation", ("SPair-71k", "spair", "SPair71k"))
    if root is None or not (root / "Layout").is_dir():
        raise SourceLayoutError(NAME, Path(path), "no Layout/ and PairAnnotation/ folders", LAYOUT)
    return root


def layout_file(root: Path, layout: str, split: str) -> Path:
    path = root / "Layout" / layout / f"{split}.txt"
    if not path.is_file():
        raise SourceLayoutError(NAME, root, f"no Layout/{layout}/{split}.txt", LAYOUT)
    return path


def layout_lines(root: Path, layout: str, split: str) -> list[str]:
    """The non-blank lines of `Layout/<layout>/<split>.txt`, in file order."""
    text = layout_file(root, layout, split).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_pair_name(line: str) -> PairRef | None:
    """A layout line as a `PairRef`, or None when it is not `<id>-<src>-<trg>:<category>`."""
    name, sep, category = line.rpartition(":")
    parts = name.split("-")
    if not sep or not category or len(parts) != 3 or not all(parts):
        return None
    return PairRef(line, parts[0], parts[1], parts[2], category)


def _points(value: object, path: Path, field: str) -> np.ndarray:
    if not isinstance(value, list):
        raise BadPair(path, "malformed_pair_annotation", f"{field} is not a list")
    out = np.full((len(value), 2), np.nan)
    for i, entry in enumerate(value):
        if entry is None:
            continue
        if not isinstance(entry, list) or len(entry) < 2:
            raise BadPair(path, "malformed_pair_annotation", f"{field}[{i}] is not [x, y]")
        for j in (0, 1):
            v = entry[j]
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise BadPair(path, "malformed_pair_annotation", f"{field}[{i}] is not numeric")
            try:
                out[i, j] = float(v)
            except ValueError as exc:
                raise BadPair(path, "malformed_pair_annotation", f"{field}[{i}]: {exc}") from exc
    return out


def _kps_id(value: object) -> int | None:
    """A keypoint id written as an int (7) or a string ("7"); None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _size(value: object) -> tuple[int, int] | None:
    if isinstance(value, list) and len(value) >= 2 and all(isinstance(v, int) for v in value[:2]):
        return int(value[0]), int(value[1])
    return None


def read_pair(root: Path, split: str, ref: PairRef) -> PairAnnotation:
    """The pair file of `ref` under `PairAnnotation/<split>/`; raises `BadPair`."""
    path = root / ref.annotation(split)
    if not path.is_file():
        raise BadPair(path, "missing_pair_annotation")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadPair(path, "malformed_pair_annotation", str(exc)) from exc
    if not isinstance(doc, dict):
        raise BadPair(path, "malformed_pair_annotation", "not a JSON object")
    src = _points(doc.get("src_kps"), path, "src_kps")
    trg = _points(doc.get("trg_kps"), path, "trg_kps")
    raw_ids = doc.get("kps_ids")
    if not isinstance(raw_ids, list):
        raise BadPair(path, "malformed_pair_annotation", "kps_ids is not a list")
    ids = tuple(_kps_id(v) for v in raw_ids)
    if None in ids:
        raise BadPair(path, "malformed_pair_annotation", f"kps_ids {raw_ids} are not all ids")
    if not len(src) == len(trg) == len(ids):
        lengths = f"src_kps {len(src)}, trg_kps {len(trg)}, kps_ids {len(ids)}"
        raise BadPair(path, "malformed_pair_annotation", f"lengths differ: {lengths}")
    return PairAnnotation(ref, src, trg, ids, _size(doc.get("src_imsize")),
                          _size(doc.get("trg_imsize")))
