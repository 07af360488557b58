"""Reader of NIGHTS (DreamSim's human-judged triplets), for Visual Similarity.

`data.csv` is read by column NAME (`REQUIRED` must be present, order and extra columns do not
matter); a missing column stops with an error naming the file and the column. Votes are parsed as
numbers whether written as ints or floats (`6`, `6.0`, `0.8333`). A row that cannot be parsed is
not fatal: it is returned as a named reason for the builder to count. Image paths are relative to
the dataset folder, as in the release. Image resolution is UNCONFIRMED (SOURCE_FORMATS.md section
7) and nothing here depends on it; `is_imagenet` and `prompt` are optional.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from builders.sources import SourceLayoutError, locate, read_csv_rows

NAME = "nights"
# Licence note for the dataset card (builders/card.py).
LICENSE = ("NIGHTS (DreamSim): code MIT; the dataset's licence is not stated in the release "
           "(unconfirmed)")
TOP = "nights"
CSV = "data.csv"
REQUIRED = (
    "id", "left_vote", "right_vote", "votes", "ref_path", "left_path", "right_path", "split",
)
DUPLICATE_ROW = "duplicate_row"
LAYOUT = f"""\
{TOP}/          (nights.zip, or the chunked ref/ and distort/ zips)
  {CSV}         header: id,left_vote,right_vote,votes,ref_path,left_path,right_path,split,
                  is_imagenet,prompt
  ref/000/000.png ... ref/099/999.png
  distort/000/000_0.png, distort/000/000_1.png ...
"""


@dataclass(frozen=True)
class Triplet:
    id: str
    left_vote: float
    right_vote: float
    votes: float
    ref_path: str
    left_path: str
    right_path: str
    split: str
    is_imagenet: bool | None
    prompt: str | None


def find_root(path: Path) -> Path:
    root = locate(path, CSV, (TOP,))
    if root is None:
        raise SourceLayoutError(NAME, Path(path), f"no {CSV}", LAYOUT)
    return root


def _number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _flag(text: str | None) -> bool | None:
    if text is None or not text.strip():
        return None
    return text.strip().lower() in ("true", "1", "yes")


def _parse(row: dict[str, str | None]) -> Triplet | str:
    """The row as a Triplet, or the reason it is malformed."""
    if any(row.get(c) is None or not row[c].strip() for c in REQUIRED):
        return "malformed_row_empty_field"
    try:
        left, right, votes = (_number(row[c]) for c in ("left_vote", "right_vote", "votes"))
    except ValueError:
        return "malformed_row_votes_not_numeric"
    return Triplet(
        id=row["id"].strip(), left_vote=left, right_vote=right, votes=votes,
        ref_path=row["ref_path"].strip(), left_path=row["left_path"].strip(),
        right_path=row["right_path"].strip(), split=row["split"].strip(),
        is_imagenet=_flag(row.get("is_imagenet")), prompt=row.get("prompt"),
    )


def read_triplets(root: Path) -> tuple[list[Triplet], Counter]:
    """Every well-formed row of `data.csv` in file order, and malformed rows counted by reason
    (a row repeating an earlier row's `id` is dropped as `duplicate_row`: its triplet would be
    two examples of one split)."""
    rows = read_csv_rows(root / CSV, REQUIRED,
                         f"NIGHTS' data.csv needs at least: {', '.join(REQUIRED)}; use the data.csv "
                         f"shipped with nights.zip.", key=("id",))
    triplets, malformed = [], Counter()
    if rows.duplicates:
        malformed[DUPLICATE_ROW] += rows.duplicates
    for row in rows:
        parsed = _parse(row)
        if isinstance(parsed, str):
            malformed[parsed] += 1
        else:
            triplets.append(parsed)
    return triplets, malformed
