"""Reader of MMVP (Tong et al., "Eyes Wide Shut"): the official files of HF `MMVP/MMVP`.

Layout (tsb0601/MMVP README): `Questions.csv` (columns `Index` 1..300, `Question`, `Options`
such as "(a) Open (b) Closed", `Correct Answer` "(a)" / "(b)") and `MMVP Images/<Index>.jpg`.
The 150 pairs are consecutive rows (Index 1-2, 3-4, ...). `LABEL_FIXES` are lmms-eval's
corrections of four swapped labels (lmms_eval/tasks/mmvp/utils.py; tsb0601/MMVP issue 30), applied
only when asked for: LVR's numbers use the labels as released.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from builders.sources import SourceLayoutError, read_csv_rows
from builders.sources.hub import candidates

NAME = "mmvp"
TOP_FOLDERS = ("MMVP", "mmvp")
HUB_REPO = "MMVP/MMVP"
CSV = "Questions.csv"
IMAGES = "MMVP Images"
REQUIRED = ["Index", "Question", "Options", "Correct Answer"]
LABEL_FIXES = {99: "(b)", 100: "(a)", 279: "(b)", 280: "(a)"}
LABELS = ("original", "corrected")
LAYOUT = f"""\
<mmvp_root>/                 (HF MMVP/MMVP)
  {CSV}              Index,Question,Options,Correct Answer
  {IMAGES}/1.jpg ... {IMAGES}/300.jpg
"""
_OPTION = re.compile(r"\(([a-z])\)\s*(.*?)\s*(?=\([a-z]\)|$)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class MmvpRow:
    index: int  # 1..300
    question: str
    options_text: str  # as released: "(a) Open (b) Closed"
    choices: tuple[str, ...]
    correct: int
    image: Path


def find_root(path: Path) -> Path:
    for cand in candidates(path, TOP_FOLDERS, (HUB_REPO,)):
        if (cand / CSV).is_file():
            return cand
    raise SourceLayoutError(NAME, path, f"no {CSV}", LAYOUT)


def parse_options(text: str) -> tuple[str, ...] | None:
    """["Open", "Closed"] from "(a) Open (b) Closed"; None unless lettered a, b, ... in order."""
    found = _OPTION.findall(text.strip())
    if len(found) < 2 or [m[0].lower() for m in found] != [chr(97 + i) for i in range(len(found))]:
        return None
    return tuple(m[1] for m in found)


def iter_rows(root: Path, labels: str = "original") -> Iterator[MmvpRow | str]:
    """Rows in csv order (a row that cannot be used is a reason string)."""
    if labels not in LABELS:
        raise ValueError(f"MMVP labels must be one of {', '.join(LABELS)}, got {labels!r}")
    hint = "re-download Questions.csv from the HF dataset MMVP/MMVP"
    for row in read_csv_rows(Path(root) / CSV, REQUIRED, hint):
        try:
            index = int(row["Index"])
        except ValueError:
            yield "bad_index"
            continue
        choices = parse_options(row["Options"])
        gold = LABEL_FIXES.get(index, row["Correct Answer"]) if labels == "corrected" else (
            row["Correct Answer"])
        gold = gold.strip().lower()
        if choices is None:
            yield "bad_options"
            continue
        letters = [f"({chr(97 + i)})" for i in range(len(choices))]
        if gold not in letters:
            yield "answer_not_in_options"
            continue
        image = Path(root) / IMAGES / f"{index}.jpg"
        yield MmvpRow(index, row["Question"], row["Options"], choices, letters.index(gold), image)
