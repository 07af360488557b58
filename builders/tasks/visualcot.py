"""Visual-CoT as direct question-answer pairs (the training set of the broad table): every usable
entry of the source's annotation file in file order, one image each, the question in the task's
prompt (LVR's "Provide a short and direct response." instruction) and the short answer as gold.
Boxes, crops and reasoning are not kept (LIVR Sec. 4.2)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builders.benchmark import make_record, usable_rows
from builders.record import Record
from builders.registry import BuilderParams
from builders.sources import visualcot

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """Visual-CoT's `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    annotation_files: tuple[str, ...]


def build(ctx: BuildContext) -> Iterator[Record]:
    root, path = visualcot.find_root(ctx.source_root, list(ctx.params["annotation_files"]))
    ctx.note_source(path)
    for n, pair, image in usable_rows(ctx, visualcot.iter_pairs(path),
                                      lambda pair: root / pair.image):
        yield make_record(
            ctx, n, question=pair.question, sub_task=pair.dataset or ctx.spec.sub_task,
            images=[image], choices=[], answer=pair.answer,
            prompt=ctx.spec.render_prompt(question=pair.question),
            source={"dataset": "visualcot", "entry": pair.key, "question_id": pair.question_id,
                    "source_dataset": pair.dataset, "source_images": [pair.image]},
        )
