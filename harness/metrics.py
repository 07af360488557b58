"""Scoring: per-example correctness and per-task metrics, macro mean and reference baselines.

Owns `TaskMetrics`, `score`, `task_metrics`, `random_baseline` and `constant_baseline`, over the
per-example `Item` / `Scored` of `harness.items`. Parsing lives in `harness.parsing`; every task's metrics record the
`PARSER_VERSION` that read its answers (and the judge, if one was used), and each predictions
row keeps the item's letters and option texts, so `harness rescore` can re-read the saved raw
outputs with a newer parser without the built data or a model.

Rules: accuracy is exact match of the parsed answer with the gold one, in % (the paper's metric);
an unparseable or missing output is scored wrong and counted as a parse failure, never skipped.
Counting adds Molmo's off-by-one ("close", |pred - gold| <= 1) and valid (a number was parsed)
rates. Every task reports the random-choice accuracy (1 / options; counting: 1 / the number of
possible counts in tasks.toml, 2..10 -> 11.11), the best constant answer's accuracy on the same
gold answers (EVAL_AND_DEDUP_NOTES.md 2.6.4: "always B" scores 57% on Object_Localization) and
histograms of predicted and gold answers. All rates are in %. Plan answers (VSP) are scored by
simulation in `harness.vsp_scoring`, which also fills the per-variant rates (`variants`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from builders.registry import TaskSpec
from harness.items import Item, Scored
from harness.parsing import PARSER_VERSION, Judge, parse_choice, parse_count

FAIL = "fail"  # histogram key of unparseable outputs


def score(item: Item, raw: str, judge: Judge | None = None) -> Scored:
    """One output parsed and compared with the gold answer; `judge` (an MCQ fallback for
    outputs the rules cannot read, `harness.parsing.Judge`) is off by default."""
    if item.answer_type == "plan":
        from harness.vsp_scoring import score_plan

        return score_plan(item, raw)
    if item.answer_type == "mcq":
        letter = parse_choice(raw, item.letters, item.choices, judge)
        parsed = f"({letter})" if letter else None
    elif item.answer_type == "open":
        count = parse_count(raw)
        parsed = str(count) if count is not None else None
    else:
        # The generalisation benchmarks' answer types (yes/no, point, free text).
        from harness.benchmarks import parse_answer

        parsed, correct = parse_answer(item, raw)
        return Scored(item.idx, item.task, raw, parsed, item.gold, correct)
    return Scored(item.idx, item.task, raw, parsed, item.gold, parsed == item.gold,
                  item.letters, item.choices)


@dataclass(frozen=True)
class TaskMetrics:
    task: str
    answer_type: str
    n: int
    correct: int
    accuracy: float  # % exact match: the paper's metric
    parse_failures: int
    parse_failure_rate: float
    random_baseline: float
    constant_baseline: float  # best constant answer on these gold answers
    constant_answer: str
    pred_hist: dict[str, int] = field(default_factory=dict)
    gold_hist: dict[str, int] = field(default_factory=dict)
    off_by_one_rate: float | None = None  # counting only
    valid_rate: float | None = None  # counting only
    missing: int = 0  # test records the executor returned no text for (scored as failures)
    variants: dict[str, float] | None = None  # % correct under each scoring rule (plans)
    parser_version: int | None = None  # harness.parsing.PARSER_VERSION; None: not recorded
    judge: str | None = None  # "module:function" of a judge fallback, if one was used

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TaskMetrics:
        return cls(**obj)


def _pct(k: int, n: int) -> float:
    return round(100.0 * k / n, 4) if n else 0.0


def random_baseline(spec: TaskSpec) -> float:
    """Random-choice accuracy (%): 1 / options, or 1 / the possible counts for counting (plans
    have no choices: 0)."""
    if spec.answer_type == "plan":
        return 0.0
    if spec.answer_type == "mcq":
        return _pct(1, spec.num_options)
    if spec.answer_type != "open":
        from harness.benchmarks import random_baseline as benchmark_baseline

        return benchmark_baseline(spec)
    low, high = int(spec.params["min_count"]), int(spec.params["max_count"])
    return _pct(1, high - low + 1)


def constant_baseline(gold: Iterable[str]) -> tuple[str, float]:
    """The constant answer that scores best on `gold`, and its accuracy (%); ties: smallest."""
    counts = Counter(gold)
    if not counts:
        return "", 0.0
    answer = min(counts, key=lambda a: (-counts[a], a))
    return answer, _pct(counts[answer], sum(counts.values()))


def answer_order(answer: str) -> tuple[bool, int, str]:
    """Sort key of histogram keys: counts numerically, letters alphabetically, "fail" last."""
    return (answer == FAIL, len(answer), answer)


def sorted_hist(hist: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(hist.items(), key=lambda kv: answer_order(kv[0])))


def task_metrics(
    scored: Sequence[Scored], spec: TaskSpec, missing: int = 0, judge: str | None = None
) -> TaskMetrics:
    n = len(scored)
    failures = sum(s.parsed is None for s in scored)
    constant, constant_acc = constant_baseline(s.gold for s in scored)
    extra: dict[str, Any] = {}
    if scored and scored[0].variants is not None:
        extra["variants"] = {k: _pct(sum(bool(s.variants and s.variants[k]) for s in scored), n)
                             for k in scored[0].variants}
    if spec.answer_type == "open":
        close = sum(
            s.parsed is not None and abs(int(s.parsed) - int(s.gold)) <= 1 for s in scored
        )
        extra = {"off_by_one_rate": _pct(close, n), "valid_rate": _pct(n - failures, n)}
    return TaskMetrics(
        task=spec.name,
        answer_type=spec.answer_type,
        n=n,
        correct=sum(s.correct for s in scored),
        accuracy=_pct(sum(s.correct for s in scored), n),
        parse_failures=failures,
        parse_failure_rate=_pct(failures, n),
        random_baseline=random_baseline(spec),
        constant_baseline=constant_acc,
        constant_answer=constant,
        pred_hist=sorted_hist(Counter(s.parsed or FAIL for s in scored)),
        gold_hist=sorted_hist(Counter(s.gold for s in scored)),
        missing=missing,
        parser_version=PARSER_VERSION,
        judge=judge,
        **extra,
    )
