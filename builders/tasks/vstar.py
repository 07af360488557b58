"""V* Bench's test split: the rows of `params.categories` (direct_attributes, relative_position)
in file order; the prompt is the release's `text` unchanged, the gold "(X)" from `label`, the
sub_task the category."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builders.benchmark import gold_letter, make_record, usable_rows
from builders.record import Record
from builders.registry import BuilderParams
from builders.sources import vstar

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """V* Bench's `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    categories: tuple[str, ...]


def build(ctx: BuildContext) -> Iterator[Record]:
    root = vstar.find_root(ctx.source_root)
    ctx.note_source(root / vstar.QUESTIONS)
    rows = vstar.iter_rows(root, list(ctx.params["categories"]))
    for n, row, image in usable_rows(ctx, rows, lambda row: row.image):
        yield make_record(
            ctx, n, question=row.question, sub_task=row.category, images=[image],
            choices=row.choices, answer=gold_letter(row.correct),
            prompt=ctx.spec.render_prompt(text=row.text),
            source={"dataset": "vstar", "question_id": row.question_id,
                    "category": row.category, "source_images": [row.image_name]},
        )
