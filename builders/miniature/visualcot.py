"""Miniature Visual-CoT training data in both LLaVA-format files the reader takes.

`write(root)` writes `root/Visual-CoT/viscot_363k.json` (Visual-CoT's own: two images per entry,
the second a "###[box]" crop, four turns with the box answer first) over images under
`cot/<dataset>/`; `write_lvr(root)` writes LVR's export `root/lvr_data/meta_data_lvr_sft_stage1.json`
(one image, "<lvr>\\n<answer> .. </answer>" answers, `bboxes`) over images under `viscot/<dataset>/`.
14 entries each; faults: entry 5 names a missing image, entry 9 has no gpt turn.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from builders.miniature import synthetic_image

TOP, LVR_TOP = "Visual-CoT", "lvr_data"
ENTRIES = 14
MISSING_IMAGE_ENTRY, NO_ANSWER_ENTRY = 5, 9
DATASETS = ("flickr30k", "gqa", "textvqa", "docvqa")
COT_PROMPT = (" Please provide the bounding box coordinate of the region that can help you "
              "answer the question better.")


def qa(i: int) -> tuple[str, str, str]:
    """(dataset, question, answer) of entry i."""
    dataset = DATASETS[i % len(DATASETS)]
    things = ("the sign", "the shirt", "the car", "the cup", "the kite")
    return dataset, f"What color is {things[i % 5]} in picture {i}?", f"It is colour number {i}."


def _images(root: Path, prefix: str, seed: int) -> list[str]:
    rng = np.random.default_rng(seed + 363)
    names = []
    for i in range(ENTRIES):
        name = f"{prefix}/{qa(i)[0]}/{i:05d}.jpg"
        names.append(name)
        if i != MISSING_IMAGE_ENTRY:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            synthetic_image(rng, 60, 45, shapes=3).save(root / name, quality=90)
    return names


def _visualcot_entry(i: int, name: str) -> dict:
    """Visual-CoT's own form: the box turn first, then the answer to a second image turn."""
    dataset, question, answer = qa(i)
    turns = [{"from": "human", "value": f"<image>\n{question}{COT_PROMPT}"},
             {"from": "gpt", "value": "[0.120, 0.340, 0.560, 0.780]"},
             {"from": "human", "value": "<image>"}, {"from": "gpt", "value": answer}]
    return {"dataset": dataset, "split": "train", "question_id": i,
            "image": [name, f"{name}###[12, 34, 56, 78]"], "conversations": turns}


def _lvr_entry(i: int, name: str) -> dict:
    """LVR's export: one image, the answer in <lvr> / <answer> tags, the box in `bboxes`."""
    dataset, question, answer = qa(i)
    turns = [{"from": "human", "value": f"<image>\n{question}\nProvide a short and direct "
              "response."}, {"from": "gpt", "value": f"<lvr>\n<answer> {answer} </answer>"}]
    return {"dataset": dataset, "split": "train", "question_id": 31593 + i, "image": [name],
            "conversations": turns, "bboxes": [[0.382, 0.456, 0.718, 0.656]]}


def _write(top: Path, prefix: str, entry, file: str, seed: int) -> Path:
    entries = [entry(i, name) for i, name in enumerate(_images(top, prefix, seed))]
    entries[NO_ANSWER_ENTRY]["conversations"].pop()  # the conversation ends on a human turn
    (top / file).write_text(json.dumps(entries, indent=1), encoding="utf-8")
    return top


def write(root: Path, seed: int = 0) -> Path:
    return _write(Path(root) / TOP, "cot", _visualcot_entry, "viscot_363k.json", seed)


def write_lvr(root: Path, seed: int = 0) -> Path:
    return _write(Path(root) / LVR_TOP, "viscot", _lvr_entry, "meta_data_lvr_sft_stage1.json",
                  seed)
