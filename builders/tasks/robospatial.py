"""RoboSpatial-Home test splits: the yes/no categories (`robospatial`, the table's 228
questions) or the pointing category (`robospatial_context`), per tasks.toml `params.categories`.

Rows pass through in file order, one image each (the RGB `img`), the question verbatim as prompt.
The gold answer is checked against the task's answer type: "yes"/"no" (lower-cased as
RoboSpatial-Eval compares it) or a polygon of at least three (x, y) points, kept as released
(`harness.benchmarks` scores a point inside it as correct). Rows that fail are counted by reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builders.benchmark import image_problem, make_record
from builders.record import Record
from builders.registry import BuilderParams
from builders.sources import robospatial

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """RoboSpatial's (robospatial, robospatial_context) `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    categories: tuple[str, ...]

YES_NO = ("yes", "no")


def parse_polygon(text: str) -> list[tuple[float, float]] | None:
    """The polygon of a RoboSpatial context answer ("[(0.1, 0.2), ...]"), or None.

    Parsed with `ast.literal_eval`, as RoboSpatial-Eval does (literals only, nothing executed).
    """
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(value, (list, tuple)) or len(value) < 3:
        return None
    points = []
    for p in value:
        if not (isinstance(p, (list, tuple)) and len(p) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)):
            return None
        points.append((float(p[0]), float(p[1])))
    return points


def _gold(answer_type: str, answer: str) -> str | None:
    if answer_type == "yesno":
        answer = answer.strip().lower()
        return answer if answer in YES_NO else None
    return answer.strip() if parse_polygon(answer) is not None else None


def build(ctx: BuildContext) -> Iterator[Record]:
    root = robospatial.find_root(ctx.source_root)
    kind = ctx.spec.answer_type
    n = 0
    for path, row in robospatial.iter_rows(root, list(ctx.params["categories"])):
        ctx.note_source(path, hash_content=path.suffix == ".parquet")
        if isinstance(row, str):
            ctx.reject(row)
            continue
        gold = _gold(kind, row.answer)
        problem = image_problem(row.image) or (
            None if gold is not None else "not_yes_no" if kind == "yesno" else "bad_polygon")
        if problem:
            ctx.reject(problem)
            continue
        n += 1
        yield make_record(
            ctx, n, question=row.question, sub_task=row.category, images=[row.image],
            choices=list(YES_NO) if kind == "yesno" else [], answer=gold,
            prompt=ctx.spec.render_prompt(question=row.question),
            source={"dataset": "robospatial", "row": row.key, "category": row.category,
                    "source_images": [f"{row.key}/img"]},
        )
