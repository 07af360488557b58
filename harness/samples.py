"""From built records to `livr_core` samples: decoded images, the prompt, the gold answer.

Owns `record_images`, `to_samples`, and `generation_samples` / `generation_options`: a cell's
test set asked as its zero-shot protocol (`harness.protocol`) says. A record's images are decoded to RGB in prompt order and
its `prompt` (the full text with lettered options, exactly what BLINK shows) becomes the sample's
prompt; the answer is the record's gold answer ("(B)" or "7"), which training supervises and
inference leaves out.

Input image twice (Table 3 ablation, `MethodSpec.image_twice`): every image is given twice in a
row, [a, a, b, b, ...], at training AND inference ("we concatenate two copies of the same image
tokens", Sec. 4.4.2). Each copy is a separate image item in the user turn, so the processor
expands it into its own image tokens (and, for Qwen, its own vision start/end markers and M-RoPE
grid); the prompt text is unchanged. The doubled sequence is what the extra-visual-compute
control needs: twice the image tokens, no new parameters.

Images are decoded eagerly: a sample must hold PIL images for the trainer's encoder, and the
paper-scale splits (1,000 train + 250 val examples of at most four images) fit in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from PIL import Image

from builders.imaging import decode_bytes
from builders.record import Record
from livr_core.encoding import Sample

if TYPE_CHECKING:
    from harness.cells import CellConfig
    from harness.executor import CellData
    from harness.options import ModelOptions


def record_images(record: Record, image_twice: bool = False) -> list[Image.Image]:
    """The record's images in prompt order (each repeated once more in place if `image_twice`).

    Decoded by the builders' one loader, so the pixel cap holds here too; an image that cannot
    be decoded raises `UnreadableImage` naming the record and the image's position (the cell
    fails with that message: dropping a test example would change the score)."""
    images = [decode_bytes(data, f"record {record.idx} of {record.task}/{record.split}, image "
                                 f"{i + 1}") for i, data in enumerate(record.images)]
    return [im for im in images for _ in range(2)] if image_twice else images


def to_samples(
    records: Iterable[Record], image_twice: bool = False, with_answer: bool = True
) -> list[Sample]:
    """One `Sample` per record, id = the record's idx; `with_answer=False` for generation."""
    return [
        Sample(
            images=record_images(r, image_twice),
            prompt=r.prompt,
            answer=r.answer if with_answer else None,
            id=r.idx,
        )
        for r in records
    ]


def generation_samples(cell: CellConfig, data: CellData) -> list[Sample]:
    """A cell's test split as generation samples, in `data.test()` order: each eval task's
    records (images doubled for an image-twice method) asked as the cell's protocol says."""
    from builders.registry import load_registry

    registry = load_registry()
    out: list[Sample] = []
    for task in cell.eval_tasks:
        samples = to_samples(data.records("test", task), cell.method.image_twice,
                             with_answer=False)
        asked = cell.protocol.identity() and not cell.method.trained
        out += cell.protocol.samples(samples, registry.resolve(task)) if asked else samples
    return out


def generation_options(cell: CellConfig, options: ModelOptions) -> ModelOptions:
    """`options` with the cell protocol's generation budget, if it sets one."""
    budget = cell.protocol.max_new_tokens
    return replace(options, max_new_tokens=budget) if budget and not cell.method.trained \
        else options
