"""The `test` split of every task whose tasks.toml says `test_source = "blink"`: BLINK's VAL split
of the task's `blink_config`, passed through unchanged (paper Sec. 4.1: "We test on the official
BLINK validation sets"). BLINK's own test split has hidden answers and is never read.

Each row keeps BLINK's idx, question, sub_task, image bytes, choices, answer, prompt and
explanation exactly; only `task`, `split` and `source` are added. The source names the config,
the BLINK split and idx, and each image as `<Config>/<shard>#<idx>/image_<k>`; the image
structs' `path` values are kept in the image columns as BLINK has them.
"""

from __future__ import annotations

from collections.abc import Iterator

from builders.build import BuildContext
from builders.record import IMAGE_COLUMNS, Record, canonical_json
from builders.registry import LETTERS
from builders.sources import blink

BLINK_SPLIT = "val"


def _images(row: dict, where: str) -> list[bytes]:
    present = [row.get(c) is not None for c in IMAGE_COLUMNS]
    if present != sorted(present, reverse=True) or not any(present):
        raise ValueError(f"{where}: images must fill image_1.. without gaps, got {present}")
    images = blink.row_images(row)
    if any(not b for b in images):
        raise ValueError(f"{where}: an image struct has no embedded bytes; use BLINK's parquet "
                         f"files as published (images embedded)")
    return images


def config_records(ctx: BuildContext, config: str, split: str = BLINK_SPLIT) -> Iterator[Record]:
    """BLINK's `split` rows of `config` as records of the split being built, unchanged.

    Valid answers are the task's letters, or the row's own options' when the task carries its
    options per record (tasks.toml `num_options = 0`: the BLINK subsets)."""
    root = blink.find_root(ctx.source_root)
    for shard in blink.split_files(root, config, split):
        ctx.note_source(shard)
        for row in blink.iter_rows(shard):
            where = f"{shard}, idx {row['idx']}"
            options = ctx.spec.num_options or len(row["choices"] or ())
            answers = [f"({letter})" for letter in LETTERS[:options]]
            if row["answer"] not in answers:
                raise ValueError(f"{where}: answer {row['answer']!r} is not one of {answers}; "
                                 f"is this BLINK's val file (test answers are hidden)?")
            images = _images(row, where)
            source = {
                "dataset": "blink",
                "config": config,
                "blink_split": split,
                "blink_idx": row["idx"],
                "source_images": [f"{config}/{shard.name}#{row['idx']}/image_{k}"
                                  for k in range(1, len(images) + 1)],
            }
            yield Record(
                idx=row["idx"], question=row["question"], sub_task=row["sub_task"],
                images=images, choices=list(row["choices"]), answer=row["answer"],
                prompt=row["prompt"], explanation=row["explanation"], task=ctx.spec.name,
                split=ctx.split, source=canonical_json(source),
                image_paths=[row[c]["path"] for c in IMAGE_COLUMNS[: len(images)]],
            )


def build(ctx: BuildContext) -> Iterator[Record]:
    yield from config_records(ctx, ctx.spec.blink_config)
