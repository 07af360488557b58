"""Reader of Visual-CoT's training set (Shao et al., NeurIPS 2024) as LLaVA-format files, for
direct question-answer training (no boxes, no reasoning).

Two files are read, both JSON lists of `{dataset, split, question_id, image, conversations}` with
image paths relative to the source root:
- Visual-CoT's own `viscot_363k.json` (HF deepcs233/Visual-CoT; tools/convert_data_to_llava_format.py):
  `image` = [path, path + "###[x1, y1, x2, y2]"], conversations = human "<image>\\n{question} Please
  provide the bounding box coordinate of the region that can help you answer the question
  better.", gpt "[box]", human "<image>", gpt "{answer}";
- LVR's export (`meta_data_lvr_sft_stage1.json`, VincentLeebang/lvr README): `image` = [path],
  human "<image>\\n{question}\\nProvide a short and direct response.", gpt "<lvr>\\n<answer> {answer}
  </answer>", plus `bboxes`.
The question is the first human turn without image tokens and without either file's instruction
suffix; the answer is the last gpt turn without LVR's tags; the image is the first path (the
"###" crop of Visual-CoT is the box, which is dropped).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from builders.sources import SourceLayoutError
from builders.sources.hub import candidates

NAME = "visualcot"
TOP_FOLDERS = ("Visual-CoT", "visual_cot", "visualcot", "lvr_data")
HUB_REPO = "deepcs233/Visual-CoT"
LAYOUT = """\
<visualcot_root>/             (HF deepcs233/Visual-CoT, or LVR's training-data folder)
  viscot_363k.json            or meta_data_lvr_sft_stage1.json (LVR's export)
  cot/flickr30k/..., cot/gqa/..., ...   (or viscot/flickr30k/..., as the file's paths say)
"""
# Instructions the two files append to the question (Visual-CoT's two CoT prompts; LVR's).
SUFFIXES = (
    ("Please provide the bounding box coordinate of the region that can help you answer the "
     "question better."),
    ("Please think step by step and provide the bounding box coordinate of the region that can "
     "help you answer the question better."),
    "Provide a short and direct response.",
)
_TAGS = re.compile(r"</?(?:lvr|answer)>", re.IGNORECASE)


@dataclass(frozen=True)
class QaPair:
    key: str  # "<file>#<entry>"
    dataset: str
    question_id: str
    question: str
    answer: str
    image: str  # relative to the source root


def find_root(path: Path, names: list[str]) -> tuple[Path, Path]:
    """(root, annotation file): the first of `names` found in the candidate folders."""
    for cand in candidates(path, TOP_FOLDERS, (HUB_REPO,)):
        for name in names:
            if (cand / name).is_file():
                return cand, cand / name
    raise SourceLayoutError(NAME, path, f"none of {', '.join(names)}", LAYOUT)


def _entries(path: Path) -> list:
    text = path.read_text(encoding="utf-8")
    try:
        if text.lstrip().startswith("["):
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise ValueError(f"{path}: not a JSON list or JSON lines file ({exc}); re-download it")


def question_of(value: str) -> str:
    text = value.replace("<image>", "").strip()
    for suffix in SUFFIXES:
        text = text.removesuffix(suffix).rstrip()
    return text


def answer_of(value: str) -> str:
    return " ".join(_TAGS.sub(" ", value).split())


def iter_pairs(path: Path) -> Iterator[QaPair | str]:
    """Question-answer pairs in file order (an unusable entry is a reason string)."""
    for i, entry in enumerate(_entries(path)):
        if not isinstance(entry, dict):
            yield "bad_entry"
            continue
        turns = [t for t in entry.get("conversations") or [] if isinstance(t, dict)]
        # The answer is the gpt turn that ends the conversation (Visual-CoT's first gpt turn is
        # the box); a conversation ending on a human turn has none.
        first = next((t.get("value", "") for t in turns if t.get("from") == "human"), "")
        last = turns[-1] if turns and turns[-1].get("from") == "gpt" else {}
        images = entry.get("image")
        image = images if isinstance(images, str) else (images or [None])[0]
        question, answer = question_of(first), answer_of(last.get("value", ""))
        if not question or not answer:
            yield "no_question_or_answer"
            continue
        if not image:
            yield "no_image"
            continue
        yield QaPair(f"{path.name}#{i}", str(entry.get("dataset", "")),
                     str(entry.get("question_id", i)), question, answer, image.split("###")[0])
