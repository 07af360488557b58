"""Miniature V* Bench: `root/vstar_bench/test_questions.jsonl` and the two sub-task folders, each
image beside its official annotation JSON (first option correct). 6 direct_attributes rows (four
options) and 5 relative_position rows (two options), labels spread over the letters, the `text`
as released (question, "(A) .." lines, the letter instruction). Also one OCR row that is not part
of the 191, and faults: attribute row 4 names a missing image, position row 3 has label "E".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from builders.miniature import synthetic_image

TOP = "vstar_bench"
INSTRUCTION = "Answer with the option's letter from the given choices directly."
ATTRIBUTES, POSITIONS = 6, 5
MISSING_IMAGE_ROW, BAD_LABEL_ROW = 4, 3  # direct_attributes / relative_position
COLOURS = ("red", "blue", "green", "white")


def _text(question: str, options: list[str]) -> str:
    lines = "\n".join(f"({chr(65 + i)}) {o}" for i, o in enumerate(options))
    return f"{question}\n{lines}\n{INSTRUCTION}"


def write(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed + 191)
    top = Path(root) / TOP
    rows = []
    plan = [("direct_attributes", i) for i in range(ATTRIBUTES)]
    plan += [("relative_position", i) for i in range(POSITIONS)] + [("OCR", 0)]
    for qid, (category, i) in enumerate(plan):
        (top / category).mkdir(parents=True, exist_ok=True)
        name = f"{category}/sa_{1000 + qid}.jpg"
        if category == "direct_attributes":
            obj = ("glove", "cup", "bag", "kite", "hat", "umbrella")[i]
            question, options = f"What is the color of the {obj}?", list(COLOURS)
        else:
            question = f"Is the cup on the left or right side of the chair {qid}?"
            options = ["left", "right"]
        correct = options[0]
        order = list(rng.permutation(len(options)))
        shown = [options[k] for k in order]
        label = chr(65 + shown.index(correct))
        if category == "relative_position" and i == BAD_LABEL_ROW:
            label = "E"
        if not (category == "direct_attributes" and i == MISSING_IMAGE_ROW):
            synthetic_image(rng, 80, 60, shapes=4).save(top / name, quality=90)
        (top / name).with_suffix(".json").write_text(json.dumps({
            "target_object": [question.split()[-1].rstrip("?")], "bbox": [[10, 10, 20, 20]],
            "question": question, "options": options}), encoding="utf-8")
        rows.append({"question_id": str(qid), "image": name, "text": _text(question, shown),
                     "label": label, "category": category})
    (top / "test_questions.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return top
