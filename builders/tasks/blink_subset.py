"""The BLINK subsets of the comparison tables (BLINK-3, BLINK-5): BLINK's val rows of several
configs, in the order tasks.toml `params.configs` lists them, as one test split.

Rows pass through as `blink_test` passes them (BLINK's idx, sub_task, images, choices, answer,
explanation; `source` names config and idx). `params.prompt_style` says what the model reads:
"blink", each row's own BLINK prompt; "lvr", the prompt LVR's evaluation builds from the row
(the task's prompt template over the question and the options in `params.option_format`).
Pooled accuracy over the split is the table's number; harness.benchmarks adds per-config accuracy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from builders.benchmark import lettered
from builders.record import Record
from builders.registry import BuilderParams
from builders.sources.blink import CONFIGS
from builders.tasks.blink_test import config_records

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """A BLINK subset's (blink3, blink5) `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    configs: tuple[str, ...]
    blink_split: str
    prompt_style: Literal["blink", "lvr"]
    option_format: str

def build(ctx: BuildContext) -> Iterator[Record]:
    params = ctx.params
    style, configs = params["prompt_style"], list(params["configs"])
    where = f"tasks.toml [tasks.{ctx.spec.name}.params]"
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise ValueError(f"{where}: unknown BLINK config(s) {', '.join(unknown)}; BLINK has "
                         f"{', '.join(CONFIGS)}")
    for config in configs:
        for record in config_records(ctx, config, params["blink_split"]):
            if style == "lvr":
                options = lettered(record.choices, params["option_format"])
                record = replace(record, prompt=ctx.spec.render_prompt(
                    question=record.question, options=options))
            yield record
