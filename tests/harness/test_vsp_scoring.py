"""VSP plans are scored by walking them on the map: the gold plan and any other plan reaching the
goal pass; hitting a hole, stopping short, leaving the goal (Mirage's rule) fail; off-grid moves
do nothing (Mirage and VSP) or lose (strict); each variant parses as its own code does."""

from __future__ import annotations

import json

import pytest

from builders.registry import get_task
from builders.vsp_maps import VspMap, simulate
from harness.items import Item
from harness.metrics import score, task_metrics

# S at (0,0), holes at (0,1) and (1,1), goal at (2,2): shortest plans DDRR (the only one)
MAP = VspMap.from_desc(["SHF", "FHF", "FFG"])
SOURCE = json.dumps({"map_desc": MAP.codes, "gold_moves": "D,D,R,R"})


def _item(idx: str = "test_VSP_Spatial_Planning_1") -> Item:
    return Item(idx, "vsp", "\\boxed{DOWN, DOWN, RIGHT, RIGHT}", "plan", source=SOURCE)


@pytest.mark.parametrize(("raw", "mirage", "vsp", "exact", "strict", "parsed"), [
    ("\\boxed{DOWN, DOWN, RIGHT, RIGHT}", True, True, True, True, "D,D,R,R"),  # gold
    ("\\boxed{D,D,R,R}", True, True, True, True, "D,D,R,R"),  # letters
    ("I think \\boxed{L, D, D, R, R}", True, True, False, False, "L,D,D,R,R"),  # off grid first
    ("\\boxed{R, D, D, R}", False, False, False, False, "R,D,D,R"),  # hole at once
    ("\\boxed{D, D, R}", False, False, False, False, "D,D,R"),  # stops short
    ("\\boxed{D, D, R, R, U}", False, True, False, False, "D,D,R,R,U"),  # leaves the goal
    ("\\boxed{D, D, R, R, R}", True, True, False, False, "D,D,R,R,R"),  # off grid at the goal
    ("Action plan: D,D,R,R", False, True, False, False, None),  # VSP's own format
    ("\\boxed{D, D, hop, R, R}", True, False, True, True, "D,D,R,R"),  # VSP rejects a non-move
    ("DOWN DOWN RIGHT RIGHT", False, False, False, False, None),  # no box: Mirage can't parse
    ("\\boxed{}", False, False, False, False, None),
])
def test_variants(raw, mirage, vsp, exact, strict, parsed):
    scored = score(_item(), raw)
    assert scored.variants == {"mirage": mirage, "vsp": vsp, "exact": exact, "strict": strict}
    assert scored.correct is mirage and scored.parsed == parsed


def test_simulator_outcomes():
    assert simulate(MAP, "DDRR").status == "goal"
    assert simulate(MAP, "R").status == "hole"
    assert simulate(MAP, "DD").status == "stopped_short"
    assert simulate(MAP, "U").status == "stopped_short"  # off the grid: stays at the start


def test_task_metrics_report_every_variant_and_parse_failures():
    spec = get_task("vsp")
    raws = ["\\boxed{D, D, R, R}", "\\boxed{D, D, R, R, U}", "no answer", "\\boxed{L, D, D, R, R}"]
    scored = [score(_item(f"i{k}"), raw) for k, raw in enumerate(raws)]
    metrics = task_metrics(scored, spec)
    assert metrics.accuracy == 50.0 and metrics.parse_failures == 1
    assert metrics.variants == {"mirage": 50.0, "vsp": 75.0, "exact": 25.0, "strict": 25.0}
    assert metrics.random_baseline == 0.0
