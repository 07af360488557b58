"""Scoring of VSP plans by simulation (answer type "plan"): Mirage's rule, VSP's, exact match.

Owns `VARIANTS`, `PRIMARY`, `parse_plan` and `score_plan`. A plan is never compared as a string
(a map often has several shortest plans): it is parsed into moves and walked on the record's map
(`source.map_desc`, `builders.vsp_maps.simulate`). Each item is scored four ways, all kept in
`Scored.variants`; `correct` and the task's accuracy are PRIMARY's.

* `mirage` (default; Mirage src/task.py:115-181, mathruler's `extract_boxed_content`): the last
  `\\boxed{...}`, upper-cased, every U/D/L/R character in order; off-grid moves do nothing, a
  hole loses at once, and the FINAL cell must be the goal (moves after reaching it still count).
  No `\\boxed{}`, or one without a move, is a parse failure.
* `vsp` (VSP-main/maze/task-main/eval.py, gym FrozenLake-v1 without slipping): the text after
  "Action plan:" (any case; else, adapted to Mirage's prompt, the boxed content) split on commas;
  each item stripped of quotes, periods and spaces must be a move (L/D/R/U, or the full word,
  which Mirage's answers use): anything else loses. Reaching the goal wins at once.
* `exact` (the LIVR authors' fork, eval/vsp_inference.py:26-38): the first `\\boxed{...}` split
  on spaces, commas and semicolons, move tokens kept, equal to the gold plan's moves.
* `strict`: Mirage's rule, but a move off the grid loses (the issue's reading; kept as an option).
"""

from __future__ import annotations

import json
import re

from builders.vsp_maps import (
    GYM_RULES,
    MIRAGE_RULES,
    MOVE_WORDS,
    STRICT_RULES,
    VspMap,
    boxed_content,
    mirage_moves,
    simulate,
)
from harness.items import Item, Scored

VARIANTS = ("mirage", "vsp", "exact", "strict")
PRIMARY = "mirage"
_WORD_TO_MOVE = {**{w: m for m, w in MOVE_WORDS.items()}, **{m: m for m in MOVE_WORDS}}
_ACTION_PLAN = re.compile(r"action plan:\s*", re.IGNORECASE)
_FIRST_BOXED = re.compile(r"\\boxed\{([^}]+)\}")


def parse_plan(text: str) -> tuple[str, ...] | None:
    """Mirage's moves of `text`, or None (no boxed answer, or no move in it)."""
    content = boxed_content(text)
    moves = mirage_moves(content) if content is not None else ()
    return moves or None


def _vsp_moves(text: str) -> tuple[str, ...] | None:
    found = list(_ACTION_PLAN.finditer(text))
    body = text[found[-1].end():] if found else boxed_content(text)
    if body is None:
        return None
    moves = []
    for item in body.split(","):
        token = item.replace('"', "").replace("'", "").replace(".", "").strip().upper()
        if token not in _WORD_TO_MOVE:
            return None
        moves.append(_WORD_TO_MOVE[token])
    return tuple(moves)


def _exact_moves(text: str) -> tuple[str, ...]:
    found = _FIRST_BOXED.search(text)
    tokens = re.split(r"[\s,;]+", (found.group(1) if found else "").strip().upper())
    return tuple(_WORD_TO_MOVE[t] for t in tokens if t in _WORD_TO_MOVE)


def score_plan(item: Item, raw: str) -> Scored:
    """`raw` walked on the item's map under every variant; `parsed` is the Mirage parse
    ("R,D"), None on a parse failure."""
    source = json.loads(item.source)
    vsp_map = VspMap.from_codes(source["map_desc"])
    moves = parse_plan(raw)
    vsp = _vsp_moves(raw)
    gold = tuple(source["gold_moves"].split(",")) if source.get("gold_moves") else ()
    variants = {
        "mirage": moves is not None and simulate(vsp_map, moves, MIRAGE_RULES).success,
        "vsp": vsp is not None and simulate(vsp_map, vsp, GYM_RULES).success,
        "exact": bool(gold) and _exact_moves(raw) == gold,
        "strict": moves is not None and simulate(vsp_map, moves, STRICT_RULES).success,
    }
    parsed = ",".join(moves) if moves is not None else None
    return Scored(item.idx, item.task, raw, parsed, item.gold, variants[PRIMARY],
                  variants=variants)
