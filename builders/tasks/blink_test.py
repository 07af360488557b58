"""The `test` split of every task whose tasks.toml says `test_source = "blink"`: BLINK's VAL split
of the task's `blink_config`, passed through unchanged (paper Sec. 4.1: "We test on the official
BLINK validation sets"). BLINK's own test split has hidden answers and is never read.

Each row keeps BLINK's idx, question, sub_task, image bytes, choices, answer, prompt and
explanation exactly; only `task`, `split` and `source` are added. A row that cannot be passed
through as it is (an answer that is not a letter, images with gaps or without bytes, an image that
does not decode, an idx seen before) stops the build with `BlinkRowError` naming the file and the
row: the test split is the benchmark and is never silently shortened. The source names the config,
the BLINK split and idx, and each image as `<Config>/<shard>#<idx>/image_<k>`; the image
structs' `path` values are kept in the image columns as BLINK has them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from PIL import Image

from builders.imaging import UnreadableImage, decode_bytes
from builders.record import IMAGE_COLUMNS, Record, canonical_json
from builders.registry import LETTERS
from builders.sources import blink

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext

BLINK_SPLIT = "val"
FIX = "re-download the file from BLINK-Benchmark/BLINK (its parquet files as published)"


class BlinkRowError(ValueError):
    """A BLINK row that cannot be passed through unchanged; names the file and the row."""


def _images(row: dict, where: str) -> list[bytes]:
    present = [row.get(c) is not None for c in IMAGE_COLUMNS]
    if present != sorted(present, reverse=True) or not any(present):
        raise BlinkRowError(f"{where}: images must fill image_1.. without gaps, got {present}")
    images = blink.row_images(row)
    if any(not b for b in images):
        raise BlinkRowError(f"{where}: an image struct has no embedded bytes; use BLINK's parquet "
                            f"files as published (images embedded)")
    for k, data in enumerate(images, 1):
        try:
            decode_bytes(data)
        except (UnreadableImage, OSError, ValueError, SyntaxError,
                Image.DecompressionBombError) as exc:
            raise BlinkRowError(f"{where}: image_{k} does not decode ({exc}); {FIX}") from exc
    return images


def config_records(ctx: BuildContext, config: str, split: str = BLINK_SPLIT) -> Iterator[Record]:
    """BLINK's `split` rows of `config` as records of the split being built, unchanged.

    Valid answers are the task's letters, or the row's own options' when the task carries its
    options per record (tasks.toml `num_options = 0`: the BLINK subsets)."""
    root = blink.find_root(ctx.source_root)
    seen: dict[str, str] = {}
    for shard in blink.split_files(root, config, split):
        ctx.note_source(shard)
        for n, row in enumerate(blink.iter_rows(shard), 1):
            where = f"{shard}, row {n} (idx {row['idx']!r})"
            if row["idx"] in seen:
                raise BlinkRowError(f"{where}: idx {row['idx']!r} was already used by "
                                    f"{seen[row['idx']]}; ids must be unique. {FIX}")
            seen[row["idx"]] = f"{shard.name} row {n}"
            options = ctx.spec.num_options or len(row["choices"] or ())
            answers = [f"({letter})" for letter in LETTERS[:options]]
            if row["answer"] not in answers:
                raise BlinkRowError(f"{where}: answer {row['answer']!r} is not one of {answers}; "
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
