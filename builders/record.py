"""The record format: BLINK's columns plus `task`, `split` and `source` (ARCHITECTURE.md).

A task builder yields `Example`s (PIL images, answer, provenance); `to_record` turns one into a
`Record` with the prompt, question and choices rendered from the registry and the images encoded.
`ARROW_SCHEMA` is the Parquet schema. It carries Hugging Face `datasets` feature metadata
(`FEATURE_DICT`) so a built split loads with `datasets.load_dataset("parquet", ...)` like BLINK
(images decode to PIL), written in the form `datasets` 3.x and 5.x both read: the `choices` list
is a `Sequence` (5.x reads it as `List`; 3.x knows no `List` and rejects a file that names it).

Ids (`make_idx`) are BLINK's `<split>_<Config>_<n>` behind our prefix `livr_`, so rows of our
splits never collide with BLINK's own rows (BLINK's val ids are `val_<Config>_<n>`) when both are
merged, and are stable for a seed (n counts the split's kept-at-build rows in order).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from PIL import Image

from builders.imaging import encode_image
from builders.registry import TaskSpec

MAX_IMAGES = 4
IMAGE_COLUMNS = tuple(f"image_{i}" for i in range(1, MAX_IMAGES + 1))
COLUMNS = (
    "idx", "question", "sub_task", *IMAGE_COLUMNS, "choices", "answer", "prompt",
    "explanation", "task", "split", "source",
)
ID_PREFIX = "livr_"

_STRING = {"dtype": "string", "_type": "Value"}
# The `datasets` features of a row, as JSON (`datasets.Features.from_dict(FEATURE_DICT)`).
FEATURE_DICT: dict[str, Any] = {
    c: ({"_type": "Image"} if c in IMAGE_COLUMNS
        else {"feature": dict(_STRING), "_type": "Sequence"} if c == "choices"
        else dict(_STRING))
    for c in COLUMNS
}
_IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
ARROW_SCHEMA = pa.schema(
    [(c, _IMAGE_STRUCT if c in IMAGE_COLUMNS else pa.list_(pa.string()) if c == "choices"
      else pa.string()) for c in COLUMNS],
    metadata={"huggingface": json.dumps({"info": {"features": FEATURE_DICT}})},
)


def canonical_json(obj: Any) -> str:
    """Stable JSON: sorted keys, no whitespace, so equal provenance gives equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass
class Example:
    """What a task builder yields: rendered images in prompt order, the gold answer, provenance.

    `answer` is "(A)".. for MCQ tasks, the integer as text for counting and the plan text for
    planning tasks ("plan": scored by simulation, `harness.vsp_scoring`). `fields` fill the
    `{name}` placeholders of the registry's prompt and question (e.g. {"object": "dog"}).
    `source` is JSON-able provenance; it must contain `dataset` and `source_images` (every raw
    image used, as a path relative to the source root: the cross-split and dedup checks key on
    it) plus the geometry needed to audit the example. `helper` is Mirage's helper image of the
    example, if the task makes one: it is published beside the split (`builders.helpers`), never
    in the record.
    """

    images: list[Image.Image]
    answer: str
    source: dict[str, Any]
    fields: dict[str, str] = field(default_factory=dict)
    helper: Image.Image | None = None


@dataclass
class Record:
    """One row of a split, images already encoded (`image_paths`: the image structs' optional
    `path` values, kept so pass-through rows such as BLINK's round-trip exactly)."""

    idx: str
    question: str
    sub_task: str
    images: list[bytes]
    choices: list[str]
    answer: str
    prompt: str
    explanation: str
    task: str
    split: str
    source: str
    image_paths: list[str | None] | None = None

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "idx": self.idx, "question": self.question, "sub_task": self.sub_task,
        }
        paths = self.image_paths or [None] * len(self.images)
        for i, col in enumerate(IMAGE_COLUMNS):
            row[col] = {"bytes": self.images[i], "path": paths[i]} if i < len(self.images) else None
        row.update(
            choices=list(self.choices), answer=self.answer, prompt=self.prompt,
            explanation=self.explanation, task=self.task, split=self.split, source=self.source,
        )
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Record:
        present = [row[c] for c in IMAGE_COLUMNS if row.get(c) is not None]
        images = [im["bytes"] for im in present]
        paths = [im.get("path") for im in present]
        return cls(
            idx=row["idx"], question=row["question"], sub_task=row["sub_task"], images=images,
            choices=list(row["choices"]), answer=row["answer"], prompt=row["prompt"],
            explanation=row.get("explanation") or "", task=row.get("task") or "",
            split=row.get("split") or "", source=row.get("source") or "{}",
            image_paths=paths if any(p is not None for p in paths) else None,
        )

    @property
    def source_dict(self) -> dict[str, Any]:
        return json.loads(self.source)


def make_idx(spec: TaskSpec, split: str, n: int) -> str:
    """Our id `livr_<split>_<Config>_<n>` (n 1-based): BLINK's form behind `ID_PREFIX`."""
    return f"{ID_PREFIX}{split}_{spec.blink_config}_{n}"


def to_record(
    example: Example, spec: TaskSpec, split: str, n: int, image_format: str, quality: int
) -> Record:
    if not 1 <= len(example.images) <= MAX_IMAGES:
        raise ValueError(f"{spec.name}: an example must have 1..{MAX_IMAGES} images, got {len(example.images)}")
    if spec.answer_type == "mcq":
        valid = [f"({x})" for x in spec.letters]
        if example.answer not in valid:
            raise ValueError(f"{spec.name}: answer {example.answer!r} is not one of {valid}")
    elif spec.answer_type == "open" and not example.answer.isdigit():
        raise ValueError(f"{spec.name}: open answer {example.answer!r} is not an integer")
    elif spec.answer_type == "plan" and not example.answer.strip():
        raise ValueError(f"{spec.name}: a plan answer cannot be empty")
    return Record(
        idx=make_idx(spec, split, n),
        question=spec.render_question(**example.fields),
        sub_task=spec.sub_task,
        images=[encode_image(im, image_format, quality) for im in example.images],
        choices=list(spec.choices),
        answer=example.answer,
        prompt=spec.render_prompt(**example.fields),
        explanation="",
        task=spec.name,
        split=split,
        source=canonical_json(example.source),
    )
