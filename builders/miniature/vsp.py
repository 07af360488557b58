"""Miniature of the official VSP spatial-planning files, in both layouts the reader accepts.

* `maps/level<N>/table/<i>.txt` + `maps/level<N>/img/<i>.png` (N = 3..6, `PER_LEVEL` maps each):
  the benchmark's table format ("| | Col 1 | ..." header, "| Row r | _ | # | * | @ |" rows) and
  its gym-rendered PNGs;
* `train_direct.jsonl` (`TRAIN_ROWS` rows) with Mirage's fields (text_input, image_input,
  image_output, text_output, map_id, map_desc) and its images under `img/level_<N>/<id>/`
  (`map_<N>x<N>_step_0.png`, `map_reasoning_path.png`), paths written as Mirage writes them
  (`./data/vsp_spatial_planning/img/...`).

Maps are drawn with the task's own generator (a seeded stream independent of any build), so a
build from this miniature exercises the reader, not the generator.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from builders.registry import load_registry
from builders.tasks.vsp import plan_answer
from builders.vsp_maps import (
    GOAL,
    HOLE,
    START,
    VspMap,
    random_map,
    render_map,
    render_path,
    shortest_paths,
)

LEVELS = (3, 4, 5, 6)
PER_LEVEL = 8
TRAIN_ROWS = 40
CELL_TEXT = {HOLE: "#", GOAL: "*", START: "@"}


def table_text(vsp_map: VspMap) -> str:
    n = vsp_map.size
    lines = ["| | " + " | ".join(f"Col {c + 1}" for c in range(n)) + " |"]
    for r, row in enumerate(vsp_map.grid):
        lines.append(f"| Row {r + 1} | " + " | ".join(CELL_TEXT.get(v, "_") for v in row) + " |")
    return "\n".join(lines)


def _solvable(rng: np.random.Generator, size: int) -> VspMap:
    while True:
        vsp_map = random_map(rng, size, 0.2)
        if shortest_paths(vsp_map)[0] > 0:
            return vsp_map


def write(root: Path, seed: int = 0) -> Path:
    top = Path(root) / "vsp"
    rng = np.random.default_rng([seed, 7907])
    for level in LEVELS:
        base = top / "maps" / f"level{level}"
        (base / "table").mkdir(parents=True, exist_ok=True)
        (base / "img").mkdir(parents=True, exist_ok=True)
        for i in range(PER_LEVEL):
            vsp_map = _solvable(rng, level)
            (base / "table" / f"{i}.txt").write_text(table_text(vsp_map), encoding="utf-8")
            render_map(vsp_map).save(base / "img" / f"{i}.png")
    spec = load_registry().resolve("vsp")
    prompt = spec.render_prompt(example=spec.params["example_line"])
    rows = []
    for i in range(TRAIN_ROWS):
        level = LEVELS[i % len(LEVELS)]
        vsp_map = _solvable(rng, level)
        _, plans = shortest_paths(vsp_map)
        moves = plans[0]
        folder = top / "img" / f"level_{level}" / str(1000 + i)
        folder.mkdir(parents=True, exist_ok=True)
        render_map(vsp_map).save(folder / f"map_{level}x{level}_step_0.png")
        render_path(vsp_map, moves).save(folder / "map_reasoning_path.png")
        rel = f"./data/vsp_spatial_planning/img/level_{level}/{1000 + i}"
        rows.append({
            "text_input": prompt,
            "image_input": f"{rel}/map_{level}x{level}_step_0.png",
            "image_output": f"{rel}/map_reasoning_path.png",
            "text_output": plan_answer(moves),
            "map_id": 1000 + i,
            "map_desc": vsp_map.codes,
        })
    (top / "train_direct.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )
    return top
