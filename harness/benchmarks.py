"""Scoring of the generalisation benchmarks beyond letter accuracy (issue 15; tasks.toml's
generalisation block; specs GENERALISATION_NOTES.md).

Owns `parse_answer` (the answer types "yesno", "point" and "text" of `builders.registry`; MCQ
letters and counts stay `harness.parsing`'s), `random_baseline` for those types, `point_in_polygon`,
`parse_point`, `vigorl_string_match` and `extra_metrics`, which `harness.runner.score_cell` adds to
a task's metrics. Every table number stays plain accuracy pooled over questions; these are the
numbers reported beside it, each from where its benchmark's authors or the compared work define it:

* chance: the mean over the test questions of 1 / their number of options (these tasks' option
  counts vary per question; V* is 115 x 1/4 + 76 x 1/2 over 191 = 34.95%); it replaces the
  task-level random baseline in the metrics.
* "by_sub_task": accuracy per record sub_task (SAT question type, BLINK config, RoboSpatial
  category, V* category) and their unweighted mean: BLINK-3's averaging is UNCONFIRMED, so both
  readings are shown.
* "mmvp_pairs": MMVP's own score (tsb0601/MMVP scripts/gpt_grader.py): a pair of consecutive
  questions counts only when both are right; pairs = complete pairs present.
* "vigorl_string_match": ViGoRL's judge (Gabesarch/grounded-rl src/vlmsearch/reward_funcs/judge.py
  `_string_matching`): gold option text and answer lower-cased, punctuation and every space
  removed; right when the gold is a substring of the answer. The gold is the text ViGoRL's file
  has (kept in the record's source), the answer the text inside <answer> tags when there are any.
* "robospatial_vqa_avg": the RoboSpatial leaderboard's "VQA avg", the mean of the configuration
  and compatibility accuracies; and "robospatial_startswith": RoboSpatial-Eval's yes/no rule
  (evaluation.py `evaluate_answer`: the stripped, lower-cased answer starts with the gold word).

Point answers (RoboSpatial context) are scored as RoboSpatial-Eval scores them: the first
"(x, y)" of the answer, else the first "[x, y]", else the first point of the first "[...]" list
read as a literal, is right when inside the gold polygon by ray casting.
"""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from builders.record import Record
from builders.registry import LETTERS, TaskSpec
from builders.tasks.robospatial import parse_polygon
from harness.items import Item, Scored, macro_mean
from harness.parsing import parse_yes_no

_TUPLE = re.compile(r"\(\s*(\d+\.?\d*)\s*,\s*(\d+\.?\d*)\s*\)")
_PAIR = re.compile(r"\[\s*(\d+\.?\d*)\s*,\s*(\d+\.?\d*)\s*\]")
_BRACKETS = re.compile(r"\[(.*?)\]", re.DOTALL)
_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer|$)", re.IGNORECASE | re.DOTALL)
# The characters ViGoRL's judge removes before comparing (judge.py `_remove_punctuation_spaces`).
_VIGORL_STRIP = str.maketrans("", "", ".?!,;:'\"()[]{}<>/\\|=+-_*&^%$#@`~ ")


def _pct(k: int, n: int) -> float:
    return round(100.0 * k / n, 4) if n else 0.0


# --- answer types ---------------------------------------------------------------------------


def point_in_polygon(x: float, y: float, polygon: Sequence[tuple[float, float]]) -> bool:
    """Ray casting: whether (x, y) lies inside `polygon` (a boundary point may fall either way,
    as in RoboSpatial-Eval's `point_in_polygon`)."""
    inside = False
    j = len(polygon) - 1
    for i, (xi, yi) in enumerate(polygon):
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def parse_point(text: str) -> tuple[float, float] | None:
    """The point a RoboSpatial pointing answer gives first (see the module docstring), or None."""
    for pattern in (_TUPLE, _PAIR):
        m = pattern.search(text)
        if m:
            return float(m.group(1)), float(m.group(2))
    m = _BRACKETS.search(text)
    if m is None:
        return None
    content = m.group(1).strip().rstrip(",")
    try:
        value = ast.literal_eval(f"[{content}]")
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    first = value[0] if value and isinstance(value[0], (list, tuple)) else value
    if (isinstance(first, (list, tuple)) and len(first) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in first)):
        return float(first[0]), float(first[1])
    return None


def _normalise_text(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .")


def parse_answer(item: Item, raw: str) -> tuple[str | None, bool]:
    """(parsed answer, correct) for the answer types "yesno", "point" and "text"."""
    if item.answer_type == "yesno":
        parsed = parse_yes_no(raw)
        return parsed, parsed == item.gold
    if item.answer_type == "point":
        point = parse_point(raw)
        polygon = parse_polygon(item.gold)
        if point is None:
            return None, False
        return f"({point[0]:g}, {point[1]:g})", polygon is not None and point_in_polygon(
            *point, polygon)
    if item.answer_type == "text":
        parsed = _normalise_text(raw) or None
        return parsed, parsed == _normalise_text(item.gold)
    raise ValueError(f"task {item.task!r}: unknown answer type {item.answer_type!r}")


def random_baseline(spec: TaskSpec) -> float:
    """Chance accuracy (%) of these answer types: yes/no 50; a point or free text has none (0)."""
    return 50.0 if spec.answer_type == "yesno" else 0.0


# --- metrics beside accuracy ------------------------------------------------------------------


def vigorl_string_match(gold: str, raw: str) -> bool:
    """ViGoRL's string-match judge of `raw` against the gold option text."""
    tagged = _ANSWER_TAG.findall(raw)
    answer = tagged[-1] if tagged else raw
    gold_key = gold.lower().strip().translate(_VIGORL_STRIP).lower()
    pred_key = answer.strip().translate(_VIGORL_STRIP).lower()
    return bool(gold_key) and (gold_key == pred_key or gold_key in pred_key)


def _gold_text(record: Record) -> str:
    source = json.loads(record.source)
    if "gold_text" in source:
        return str(source["gold_text"])
    index = LETTERS.index(record.answer.strip("()")) if record.answer.startswith("(") else -1
    return record.choices[index] if 0 <= index < len(record.choices) else record.answer


def _by_sub_task(records: Sequence[Record], scored: Sequence[Scored]) -> dict[str, Any]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for r, s in zip(records, scored, strict=True):
        groups[r.sub_task].append(s.correct)
    per = {k: {"n": len(v), "correct": sum(v), "accuracy": _pct(sum(v), len(v))}
           for k, v in groups.items()}
    return {"by_sub_task": per,
            "sub_task_macro_mean": macro_mean(p["accuracy"] for p in per.values())}


def _mmvp_pairs(records: Sequence[Record], scored: Sequence[Scored]) -> dict[str, Any]:
    pairs: dict[int, list[bool]] = defaultdict(list)
    for r, s in zip(records, scored, strict=True):
        pairs[int(json.loads(r.source)["pair"])].append(s.correct)
    complete = [v for v in pairs.values() if len(v) == 2]
    right = sum(all(v) for v in complete)
    return {"pairs": len(complete), "pairs_correct": right,
            "pair_accuracy": _pct(right, len(complete)),
            "incomplete_pairs": len(pairs) - len(complete)}


def _vigorl(records: Sequence[Record], scored: Sequence[Scored]) -> dict[str, Any]:
    right = sum(vigorl_string_match(_gold_text(r), s.raw)
                for r, s in zip(records, scored, strict=True))
    return {"vigorl_string_match": _pct(right, len(records))}


def _robospatial(records: Sequence[Record], scored: Sequence[Scored]) -> dict[str, Any]:
    by = _by_sub_task(records, scored)["by_sub_task"]
    vqa = [by[c]["accuracy"] for c in ("configuration", "compatibility") if c in by]
    starts = sum(s.raw.strip().lower().startswith(s.gold) for s in scored)
    return {"robospatial_vqa_avg": macro_mean(vqa) if len(vqa) == 2 else None,
            "robospatial_startswith": _pct(starts, len(scored))}


EXTRA_METRICS = {
    "by_sub_task": _by_sub_task,
    "mmvp_pairs": _mmvp_pairs,
    "vigorl_string_match": _vigorl,
    "robospatial_vqa_avg": _robospatial,
}


def chance(spec: TaskSpec, records: Sequence[Record]) -> float | None:
    """Mean per-question chance accuracy (%) of a task whose questions carry their own options."""
    if spec.answer_type != "mcq" or spec.num_options or not records:
        return None
    return round(100.0 * sum(1 / max(len(r.choices), 1) for r in records) / len(records), 4)


def extra_metrics(
    spec: TaskSpec, records: Sequence[Record], scored: Sequence[Scored]
) -> Mapping[str, Any]:
    """What to add to a task's metrics: the per-question chance as its `random_baseline` and the
    metrics `params.extra_metrics` names under "benchmark" (nothing for the other tasks)."""
    out: dict[str, Any] = {}
    per_question = chance(spec, records)
    if per_question is not None:
        out["random_baseline"] = per_question
    names = list(spec.params.get("extra_metrics", ()))
    unknown = [n for n in names if n not in EXTRA_METRICS]
    if unknown:
        raise ValueError(f"tasks.toml [tasks.{spec.name}.params] extra_metrics: unknown "
                         f"{', '.join(unknown)}; valid: {', '.join(EXTRA_METRICS)}")
    if names:
        benchmark: dict[str, Any] = {}
        for name in names:
            benchmark.update(EXTRA_METRICS[name](records, scored))
        out["benchmark"] = benchmark
    return out
