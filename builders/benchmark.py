"""Records of the generalisation benchmarks (SAT, BLINK subsets, RoboSpatial, MMVP, V*,
Visual-CoT): per-record lettered options and the record itself.

These tasks carry their options per record (tasks.toml `num_options = 0`), so the record is made
here rather than by `builders.record.to_record`, which renders one fixed option list per task.
Ids follow BLINK's form `<split>_<blink_config>_<n>` (n from 1, in build order) unless a
pass-through keeps the benchmark's own id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from builders.imaging import TOO_LARGE, UnreadableImage, identify_bytes
from builders.record import MAX_IMAGES, Record, canonical_json, make_idx
from builders.registry import LETTERS

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext

T = TypeVar("T")
TOO_MANY_OPTIONS = "too_many_options"
MISSING_IMAGE, UNREADABLE_IMAGE = "missing_image", "unreadable_image"  # as builders.imaging names them


def lettered(choices: Sequence[str], option_format: str) -> str:
    """The options one per line, e.g. "(A) left" or "A. left" (`option_format` has `{letter}`
    and `{text}`)."""
    return "\n".join(option_format.format(letter=LETTERS[i], text=c) for i, c in enumerate(choices))


def gold_letter(index: int) -> str:
    return f"({LETTERS[index]})"


def fits(choices: Sequence[str], images: Sequence[bytes]) -> str | None:
    """Why a row cannot be a record (too many options or images), else None."""
    if len(choices) > len(LETTERS):
        return TOO_MANY_OPTIONS
    if not 1 <= len(images) <= MAX_IMAGES:
        return "image_count"
    return None


def make_record(
    ctx: BuildContext, n: int, *, question: str, sub_task: str, images: Sequence[bytes],
    choices: Sequence[str], answer: str, prompt: str, source: dict[str, Any],
    idx: str | None = None, explanation: str = "", image_paths: list[str | None] | None = None,
) -> Record:
    """Record number `n` (from 1) of the split being built."""
    return Record(
        idx=idx or make_idx(ctx.spec, ctx.split, n), question=question, sub_task=sub_task,
        images=list(images), choices=list(choices), answer=answer, prompt=prompt,
        explanation=explanation, task=ctx.spec.name, split=ctx.split,
        source=canonical_json(source), image_paths=image_paths,
    )


def image_problem(data: bytes | None) -> str | None:
    """Why encoded image bytes cannot be used (missing, or PIL cannot identify them), else None.

    Only the header is read: a pass-through keeps the release's bytes, and full decoding of every
    Visual-CoT image would dominate the build; a truncated body surfaces when the model reads it.
    """
    if not data:
        return MISSING_IMAGE
    try:
        identify_bytes(data)
    except UnreadableImage as exc:
        return exc.reason if exc.reason == TOO_LARGE else UNREADABLE_IMAGE
    return None


def read_image_file(ctx: BuildContext, path: Path) -> bytes | None:
    """The bytes of an image file of the source, or None with the reason counted."""
    path = Path(path)
    if not path.is_file():
        ctx.reject(MISSING_IMAGE)
        return None
    data = path.read_bytes()
    problem = image_problem(data)
    if problem:
        ctx.reject(problem)
        return None
    ctx.note_source(path, hash_content=False)
    return data


def usable_rows(
    ctx: BuildContext, rows: Iterable[T | str], image_path: Callable[[T], Path]
) -> Iterator[tuple[int, T, bytes]]:
    """(n from 1, row, image bytes) of the rows a reader returns: a reason string instead of a
    row, and a row whose image file is missing or unreadable, are counted and skipped."""
    n = 0
    for row in rows:
        if isinstance(row, str):
            ctx.reject(row)
            continue
        image = read_image_file(ctx, image_path(row))
        if image is not None:
            n += 1
            yield n, row, image
