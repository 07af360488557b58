"""MMVP's test split: the 300 questions in csv order, with LVR's prompt (the options as released,
"(a)" -> "A." and "(b)" -> "B.", LVR evaluation.py lines 262-264) and gold "(A)" / "(B)".

`source` keeps the csv Index and the pair (Index 1-2 are pair 0, ...), which MMVP's pair score
(`harness.benchmarks`) reads; `params.labels` chooses the released or lmms-eval's corrected labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builders.benchmark import gold_letter, make_record, usable_rows
from builders.record import Record
from builders.registry import BuilderParams
from builders.sources import mmvp

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """MMVP's `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    labels: str


def lvr_options(options_text: str) -> str:
    return options_text.replace("(a)", "A.").replace("(b)", "B.")


def build(ctx: BuildContext) -> Iterator[Record]:
    root = mmvp.find_root(ctx.source_root)
    ctx.note_source(root / mmvp.CSV)
    for n, row, image in usable_rows(ctx, mmvp.iter_rows(root, ctx.params["labels"]),
                                     lambda row: row.image):
        yield make_record(
            ctx, n, question=row.question, sub_task=ctx.spec.sub_task,
            images=[image], choices=row.choices,
            answer=gold_letter(row.correct),
            prompt=ctx.spec.render_prompt(question=row.question,
                                          options=lvr_options(row.options_text)),
            source={"dataset": "mmvp", "index": row.index, "pair": (row.index - 1) // 2,
                    "labels": ctx.params["labels"],
                    "source_images": [f"{mmvp.IMAGES}/{row.index}.jpg"]},
        )
