"""SAT: SAT-32k (train / val) as ViGoRL samples it, and "SAT Val" (test) as ViGoRL evaluates it.

Where a split comes from (tasks.toml `[tasks.sat.params]`):
* ViGoRL's own files when the source root holds them (`builders.sources.sat.vigorl_file`): their
  rows in file order with their option order (ViGoRL already randomised it);
* otherwise array/SAT(-v2). test: every row of `test_split` in file order. train / val: one
  seeded permutation of `sample_split` (the same for both splits, so they are disjoint); val takes
  its first rows and train the next ones, sizes from tasks.toml (1,000 and 32,000; a split of
  fewer than 33,000 rows, such as a miniature, keeps val's 1/33 share). The sampled rows are
  yielded in file order, so `--n` takes the first n of the sample in file order. Each question's
  options are shuffled with a generator seeded by (seed, split, row number).

Records: options lettered in the prompt (`option_format`), gold "(X)", sub_task = SAT's
question_type; `source` names the file and row, the option order and the original gold text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builders.benchmark import fits, gold_letter, image_problem, lettered, make_record
from builders.record import Record
from builders.registry import BuilderParams
from builders.sources import sat

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """SAT's `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    sample_split: str
    test_split: str
    option_format: str


def _sample(ctx: BuildContext, total: int) -> set[int]:
    """Row numbers of this split's share of the seeded sample of `total` rows."""
    n_train, n_val = ctx.spec.size("train"), ctx.spec.size("val")
    n_val = min(n_val, round(total * n_val / (n_train + n_val)))
    order = ctx.shared_rng("sample").permutation(total)
    chosen = order[:n_val] if ctx.split == "val" else order[n_val:n_val + n_train]
    return {int(i) for i in chosen}


def _rows(ctx: BuildContext, root) -> Iterator[tuple[sat.SatRow | str, int | None]]:
    """(row or reason, its row number in the SAT split when its options are to be shuffled)."""
    own = sat.vigorl_file(root, ctx.split)
    if own is not None:
        ctx.note_source(own)
        for _, row in sat.iter_vigorl(own, root):
            yield row, None
        return
    params = ctx.params
    split = params["test_split"] if ctx.split == "test" else params["sample_split"]
    files = sat.parquet_files(root, split)
    for f in files:
        ctx.note_source(f)
    wanted = None if ctx.split == "test" else _sample(ctx, sat.count_rows(files))
    for i, row in sat.iter_parquet(files, wanted):
        yield row, i


def build(ctx: BuildContext) -> Iterator[Record]:
    root = sat.find_root(ctx.source_root)
    fmt = ctx.params["option_format"]
    n = 0
    for row, number in _rows(ctx, root):
        if isinstance(row, str):
            ctx.reject(row)
            continue
        reason = fits(row.choices, row.images) or next(
            (p for b in row.images if (p := image_problem(b))), None)
        if reason:
            ctx.reject(reason)
            continue
        # Keyed by row number, not file name: array/SAT and SAT-v2 give the same records.
        order = (list(range(len(row.choices))) if number is None
                 else list(ctx.rng("options", number).permutation(len(row.choices))))
        choices = [row.choices[i] for i in order]
        n += 1
        yield make_record(
            ctx, n, question=row.question, sub_task=row.question_type, images=row.images,
            choices=choices, answer=gold_letter(order.index(row.correct)),
            prompt=ctx.spec.render_prompt(question=row.question, options=lettered(choices, fmt)),
            source={
                "dataset": "sat", "row": row.key, "question_type": row.question_type,
                "option_order": [int(i) for i in order], "gold_text": row.answer,
                "source_images": [f"{row.key}/image_{k}" for k in range(1, len(row.images) + 1)],
            },
        )
