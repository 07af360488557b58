"""Scoring: unparseable outputs count as wrong (never skipped), counting's extra rates, the
macro mean, the random-choice and constant-answer baselines, the predicted-letter histogram."""

from __future__ import annotations

import pytest

from builders.registry import load_registry
from harness.items import Item, macro_mean
from harness.metrics import FAIL, constant_baseline, random_baseline, score, task_metrics
from harness.paper import RANDOM_CHOICE


def _spec(task: str):
    return load_registry().resolve(task)


def _mcq(idx: str, gold: str, letters: str = "AB") -> Item:
    return Item(idx, "localization", gold, "mcq", letters)


def test_mcq_scoring_counts_failures_as_wrong():
    outputs = [("(A)", "The answer is (A)."), ("(B)", "(A) or (B)"), ("(B)", ""), ("(A)", "B")]
    scored = [score(_mcq(str(i), g), raw) for i, (g, raw) in enumerate(outputs)]
    m = task_metrics(scored, _spec("localization"), missing=1)
    assert [s.correct for s in scored] == [True, False, False, False]
    assert (m.n, m.correct, m.accuracy) == (4, 1, 25.0)  # failures stay in the denominator
    assert (m.parse_failures, m.parse_failure_rate, m.missing) == (2, 50.0, 1)
    assert m.pred_hist == {"(A)": 1, "(B)": 1, FAIL: 2}
    assert m.gold_hist == {"(A)": 2, "(B)": 2}
    assert m.off_by_one_rate is None and m.valid_rate is None


def test_counting_scorer_exact_off_by_one_and_valid():
    spec = _spec("counting")
    outputs = [("7", "There are 7 cows."), ("5", "six"), ("3", "a total of 9"), ("2", "no idea"),
               ("10", "10")]
    scored = [score(Item(str(i), "counting", g, "open"), raw) for i, (g, raw) in enumerate(outputs)]
    assert [s.parsed for s in scored] == ["7", "6", "9", None, "10"]
    m = task_metrics(scored, spec)
    assert m.accuracy == 40.0  # exact match: the paper's metric
    assert m.off_by_one_rate == 60.0  # 7, 6~5, 10
    assert m.valid_rate == 80.0
    assert m.parse_failure_rate == 20.0


def test_item_letters_come_from_the_record_options():
    from tests.harness.fakes import fake_records

    record = fake_records("relative_reflectance", "test", 1)[0]
    item = Item.from_record(record, _spec("relative_reflectance"))
    assert item.letters == "ABC" and item.choices[2] == "About the same"
    assert score(item, "About the same").parsed == "(C)"
    assert score(item, "(D)").parsed is None


def test_random_baselines_match_the_paper():
    registry = load_registry()
    by_kind = {}
    # The nine tasks' answer types (the generalisation benchmarks' chance is tested elsewhere).
    for spec in registry.tasks.values():
        if spec.answer_type not in ("mcq", "open") or spec.answer_type == "mcq" and not (
                spec.num_options):  # plans (VSP), yes/no, points: no random-choice table entry
            continue
        kind = "open" if spec.answer_type == "open" else str(spec.num_options)
        by_kind.setdefault(kind, set()).add(round(random_baseline(spec), 2))
    assert by_kind == {k: {v} for k, v in RANDOM_CHOICE.items()}


def test_constant_baseline_and_macro_mean():
    assert constant_baseline(["(B)", "(A)", "(B)", "(B)"]) == ("(B)", 75.0)
    assert constant_baseline(["(B)", "(A)"]) == ("(A)", 50.0)  # ties: the smallest answer
    assert constant_baseline([]) == ("", 0.0)
    assert macro_mean([50.0, 25.0, 75.0]) == pytest.approx(50.0)
    assert macro_mean([50.0, None]) is None  # a missing task makes the mean undefined
    assert macro_mean([]) is None
