"""V* Bench's test split: the rows of `params.categories` (direct_attributes, relative_position)
in file order; the prompt is the release's `text` unchanged, the gold "(X)" from `label`, the
sub_task the category."""

from __future__ import annotations

from collections.abc import Iterator

from builders.benchmark import gold_letter, make_record, read_image_file
from builders.build import BuildContext
from builders.record import Record
from builders.sources import vstar


def build(ctx: BuildContext) -> Iterator[Record]:
    root = vstar.find_root(ctx.source_root)
    ctx.note_source(root / vstar.QUESTIONS)
    n = 0
    for row in vstar.iter_rows(root, list(ctx.params["categories"])):
        if isinstance(row, str):
            ctx.reject(row)
            continue
        image = read_image_file(ctx, row.image)
        if image is None:
            continue
        n += 1
        yield make_record(
            ctx, n, question=row.question, sub_task=row.category, images=[image],
            choices=row.choices, answer=gold_letter(row.correct),
            prompt=ctx.spec.render_prompt(text=row.text),
            source={"dataset": "vstar", "question_id": row.question_id,
                    "category": row.category, "source_images": [row.image_name]},
        )
