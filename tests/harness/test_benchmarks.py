"""Scoring of the generalisation benchmarks: yes/no parsing, RoboSpatial's point-in-polygon rule
(its authors' answer formats), ViGoRL's string judge, MMVP's pair score, per-category accuracy and
per-question chance, each against hand-computed values."""

from __future__ import annotations

import json

import pytest

from builders.record import Record
from builders.registry import load_registry
from harness.benchmarks import (
    extra_metrics,
    parse_point,
    point_in_polygon,
    vigorl_string_match,
)
from harness.items import Item, Scored
from harness.metrics import random_baseline, score, task_metrics
from harness.parsing import parse_yes_no


@pytest.mark.parametrize(("text", "want"), [
    ("Yes.", "yes"), ("No, it does not fit.", "no"), ("**No**", "no"), ("yes", "yes"),
    ("The answer is no.", "no"), ("Answer: yes", "yes"), ("\\boxed{no}", "no"),
    ("It would fit on the shelf; yes, it fits.", "yes"), ("<think>no</think>Yes", "yes"),
    ("Not really", None), ("Nothing fits there.", None), ("", None),
    ("It is either yes or no.", None),  # both words in the deciding sentence
])
def test_parse_yes_no(text, want):
    assert parse_yes_no(text) == want


SQUARE = [(0.2, 0.2), (0.6, 0.2), (0.6, 0.6), (0.2, 0.6)]
# An L: the square's upper-right quarter cut away.
ELL = [(0.2, 0.2), (0.4, 0.2), (0.4, 0.4), (0.6, 0.4), (0.6, 0.6), (0.2, 0.6)]


def test_point_in_polygon_geometry():
    assert point_in_polygon(0.4, 0.4, SQUARE) and not point_in_polygon(0.7, 0.4, SQUARE)
    assert not point_in_polygon(0.1, 0.1, SQUARE)
    assert point_in_polygon(0.3, 0.3, ELL) and point_in_polygon(0.5, 0.5, ELL)
    assert not point_in_polygon(0.5, 0.3, ELL)  # in the cut-away corner


@pytest.mark.parametrize(("text", "want"), [
    ("[(0.3, 0.4), (0.5, 0.5)]", (0.3, 0.4)),  # the release's format: the first tuple
    ("The point is (0.45,0.5).", (0.45, 0.5)),
    ("[0.31, 0.42]", (0.31, 0.42)),
    ("[[0.3, 0.4], [0.9, 0.9]]", (0.3, 0.4)),
    ("Points: [(0.35, 0.5), (0.2", (0.35, 0.5)),  # truncated answer: the first tuple still counts
    ("[(-0.1, .5)]", (-0.1, 0.5)),  # only the literal fallback reads these numbers
    ("to the left of the table", None),
    ("[left, right]", None),
])
def test_parse_point_reads_robospatial_answers(text, want):
    assert parse_point(text) == want


def test_score_dispatches_the_new_answer_types():
    polygon = str(SQUARE)
    inside = score(Item("a", "robospatial_context", polygon, "point"), "[(0.3, 0.3)]")
    outside = score(Item("b", "robospatial_context", polygon, "point"), "[(0.9, 0.3)]")
    unparsed = score(Item("c", "robospatial_context", polygon, "point"), "left")
    assert (inside.correct, inside.parsed) == (True, "(0.3, 0.3)")
    assert (outside.correct, unparsed.correct, unparsed.parsed) == (False, False, None)
    yes = score(Item("d", "robospatial", "yes", "yesno"), "Yes, it is.")
    assert (yes.parsed, yes.correct) == ("yes", True)
    assert score(Item("e", "visualcot", "Red.", "text"), " red ").correct
    registry = load_registry()
    assert random_baseline(registry.resolve("robospatial")) == 50.0


@pytest.mark.parametrize(("gold", "raw", "want"), [
    ("rotated left", "Rotated left.", True),
    ("left by 26 degrees", "<think>...</think><answer> left by 26 degrees </answer>", True),
    ("no objects moved", "I think no objects moved at all", True),  # gold inside the answer
    ("chair was moved left in the first frame", "chair was moved left", False),  # ViGoRL's gold
    ("rotated left", "B", False),
    ("yes", "no", False),
])
def test_vigorl_string_match(gold, raw, want):
    assert vigorl_string_match(gold, raw) is want


def _record(task, idx, answer, choices, sub_task, **source):
    return Record(idx=idx, question="q", sub_task=sub_task, images=[b"x"], choices=choices,
                  answer=answer, prompt="p", explanation="", task=task, split="test",
                  source=json.dumps(source))


def _scored(records, correct, raws=None):
    return [Scored(r.idx, r.task, (raws or {}).get(r.idx, ""), None, r.answer, c)
            for r, c in zip(records, correct, strict=True)]


def test_mmvp_pair_score_beside_question_accuracy():
    spec = load_registry().resolve("mmvp")
    records = [_record("mmvp", f"q{i}", "(A)", ["a", "b"], "MMVP", pair=i // 2)
               for i in range(7)]  # pairs 0-2 complete, pair 3 incomplete
    correct = [True, True, True, False, True, True, True]
    extra = extra_metrics(spec, records, _scored(records, correct))
    assert extra["benchmark"] == {"pairs": 3, "pairs_correct": 2, "pair_accuracy": 66.6667,
                                  "incomplete_pairs": 1}
    assert extra["random_baseline"] == 50.0


def test_per_category_accuracy_and_per_question_chance():
    spec = load_registry().resolve("blink3")
    records = ([_record("blink3", f"d{i}", "(A)", ["A", "B"], "Relative Depth") for i in range(4)]
               + [_record("blink3", f"s{i}", "(A)", ["yes", "no", "maybe"], "Spatial Relation")
                  for i in range(2)])
    correct = [True, True, True, False, False, True]
    extra = extra_metrics(spec, records, _scored(records, correct))
    bench = extra["benchmark"]
    assert bench["by_sub_task"] == {
        "Relative Depth": {"n": 4, "correct": 3, "accuracy": 75.0},
        "Spatial Relation": {"n": 2, "correct": 1, "accuracy": 50.0}}
    assert bench["sub_task_macro_mean"] == 62.5  # pooled accuracy is 4/6 = 66.67
    assert extra["random_baseline"] == pytest.approx(100 * (4 / 2 + 2 / 3) / 6, abs=1e-4)


def test_vigorl_metric_uses_the_released_gold_text():
    spec = load_registry().resolve("sat")
    records = [_record("sat", "a", "(B)", ["left", "no objects moved"], "obj_movement",
                       gold_text="no objects moved"),
               _record("sat", "b", "(A)", ["chair moved left", "no"], "obj_movement",
                       gold_text="chair moved left in the first frame")]
    scored = _scored(records, [True, True], {"a": "No objects moved.", "b": "chair moved left"})
    assert extra_metrics(spec, records, scored)["benchmark"]["vigorl_string_match"] == 50.0


def test_robospatial_vqa_average_and_authors_rule():
    spec = load_registry().resolve("robospatial")
    records = [_record("robospatial", f"c{i}", "yes", ["yes", "no"], "configuration")
               for i in range(2)] + [_record("robospatial", "k", "no", ["yes", "no"],
                                             "compatibility")]
    item = [Item.from_record(r, spec) for r in records]
    raws = ["Yes.", "I'd say yes", "No"]
    scored = [score(i, raw) for i, raw in zip(item, raws)]
    extra = extra_metrics(spec, records, scored)["benchmark"]
    assert [s.correct for s in scored] == [True, True, True]
    assert extra["robospatial_vqa_avg"] == 100.0
    assert extra["robospatial_startswith"] == pytest.approx(200 / 3, abs=1e-3)
    assert task_metrics(scored, spec).random_baseline == 50.0


def test_an_unknown_extra_metric_names_the_valid_ones():
    spec = load_registry().resolve("mmvp")
    from dataclasses import replace

    bad = replace(spec, params={**spec.params, "extra_metrics": ["pairs"]})
    with pytest.raises(ValueError, match="unknown pairs; valid: by_sub_task, mmvp_pairs"):
        extra_metrics(bad, [], [])
