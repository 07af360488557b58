"""Reader of V* Bench (Wu & Xie, SEAL): HF `craigwu/vstar_bench`.

Layout: `test_questions.jsonl` (the HF `test` split, 191 rows: `question_id`, `image` relative to
the folder such as "direct_attributes/sa_4690.jpg", `text` = question, "(A) ..." option lines and
"Answer with the option's letter from the given choices directly.", `label` a letter, `category`)
and the folders `direct_attributes/`, `relative_position/` holding the images (each beside the
official annotation JSON `{target_object, bbox, question, options}`, whose first option is the
correct one; the jsonl already carries the lettered, shuffled form and is what toolkits read).
`OCR/` and `GPT4V-hard/` are not part of the 191.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from builders.sources import SourceLayoutError
from builders.sources.hub import candidates

NAME = "vstar"
TOP_FOLDERS = ("vstar_bench", "vstar", "VStar")
HUB_REPO = "craigwu/vstar_bench"
QUESTIONS = "test_questions.jsonl"
LAYOUT = f"""\
<vstar_root>/                 (HF craigwu/vstar_bench)
  {QUESTIONS}     {{"question_id", "image", "text", "label", "category"}} per line
  direct_attributes/sa_4690.jpg, sa_4690.json, ...
  relative_position/...
"""
_OPTION_LINE = re.compile(r"^\(([A-H])\)\s*(.*?)\s*$")


@dataclass(frozen=True)
class VstarRow:
    question_id: str
    category: str
    question: str
    text: str  # as released
    choices: tuple[str, ...]
    correct: int
    image: Path
    image_name: str


def find_root(path: Path) -> Path:
    for cand in candidates(path, TOP_FOLDERS, (HUB_REPO,)):
        if (cand / QUESTIONS).is_file():
            return cand
    raise SourceLayoutError(NAME, path, f"no {QUESTIONS}", LAYOUT)


def parse_text(text: str) -> tuple[str, tuple[str, ...]] | None:
    """(question, options) of a V* `text`: the lines before "(A)" and the "(X) ..." lines."""
    question, options = [], []
    for line in text.splitlines():
        m = _OPTION_LINE.match(line.strip())
        if m and m.group(1) == chr(ord("A") + len(options)):
            options.append(m.group(2))
        elif not options:
            question.append(line)
    if len(options) < 2 or not "".join(question).strip():
        return None
    return "\n".join(question).strip(), tuple(options)


def iter_rows(root: Path, categories: list[str]) -> Iterator[VstarRow | str]:
    """The rows of `categories`, in file order (a row that cannot be used is a reason string)."""
    path = Path(root) / QUESTIONS
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                yield "bad_json"
                continue
            if doc.get("category") not in categories:
                continue
            parsed = parse_text(doc.get("text") or "")
            if parsed is None:
                yield "unparsed_text"
                continue
            question, choices = parsed
            label = str(doc.get("label", "")).strip().strip("()").upper()
            if len(label) != 1 or not "A" <= label < chr(ord("A") + len(choices)):
                yield "answer_not_in_options"
                continue
            name = str(doc.get("image", ""))
            yield VstarRow(str(doc.get("question_id")), doc["category"], question, doc["text"],
                           choices, ord(label) - ord("A"), Path(root) / name, name)
