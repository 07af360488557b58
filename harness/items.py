"""What scoring reads and writes per example, and the mean over tasks.

Owns `Item` (what scoring needs of one test record), `Scored` (one line of predictions.jsonl)
and `macro_mean`. Kept apart from `harness.metrics` so that the scorers of the other answer types
(`harness.vsp_scoring` for plans, `harness.benchmarks` for yes/no, points and free text), which
`harness.metrics.score` calls, depend on it and not on each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from builders.record import Record
from builders.registry import LETTERS, TaskSpec


@dataclass(frozen=True)
class Item:
    """What scoring needs of one test record."""

    idx: str
    task: str
    gold: str  # "(B)" or "7"
    answer_type: str  # "mcq" or "open"
    letters: str = ""  # the item's valid letters ("AB"); empty for counting
    choices: tuple[str, ...] = ()
    source: str = "{}"  # the record's provenance JSON: plan answers are walked on its map

    @classmethod
    def from_record(cls, record: Record, spec: TaskSpec) -> Item:
        # The item's own options decide its valid letters (BLINK rows carry their choices).
        n = len(record.choices) or spec.num_options
        return cls(
            idx=record.idx, task=spec.name, gold=record.answer, answer_type=spec.answer_type,
            letters=LETTERS[:n] if spec.answer_type == "mcq" else "",
            choices=tuple(record.choices),
            source=record.source if spec.answer_type == "plan" else "{}",
        )


@dataclass(frozen=True)
class Scored:
    """One line of predictions.jsonl."""

    idx: str
    task: str
    raw: str
    parsed: str | None  # "(B)" / "7"; None = parse failure
    gold: str
    correct: bool
    letters: str = ""  # the item's valid letters ("AB"); empty for counting
    choices: tuple[str, ...] = ()  # the option texts the parser matched against
    variants: dict[str, bool] | None = None  # correctness under each scoring rule (plans)

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        for key in ("letters", "choices", "variants"):  # only the rows that have them
            if not row[key]:
                del row[key]
        return row



def macro_mean(values: Iterable[float | None]) -> float | None:
    """Unweighted mean over tasks (BLINK's Total, the paper's Mean); None if any is missing."""
    values = list(values)
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]
