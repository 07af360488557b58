"""FrozenLake maps of VSP's spatial-planning task: the grid, moves, simulation, shortest paths,
random generation and rendering (the map as the benchmark draws it, and Mirage's helper image).

Owns `VspMap`, `MOVES`, `simulate` (with `Rules`), `shortest_paths`, `random_map`,
`boxed_content`, `mirage_moves`, `render_map`, `render_path` and `sprite_dir`. The builder (`builders.tasks.vsp`), the reader of
the official files (`builders.sources.vsp`) and the scorer (`harness.vsp_scoring`) share it.

* Grid codes are Mirage's `map_desc` (Mirage src/task.py:129-181): 0 safe ice, -1 hole, 1 start,
  2 goal; `desc` is gym's row strings (F, H, S, G).
* Moves L/D/R/U shift (row, column) by (0,-1), (1,0), (0,1), (-1,0) (gym's action order).
* Rendering is gym 0.26's FrozenLake `rgb_array` renderer, re-done with PIL: 64-pixel cells, the
  ice tile under every cell, hole / goal / stool sprites, a 1-pixel (180, 200, 230) cell border,
  then the elf (facing down) on the start cell, each sprite scaled 32 -> 64 nearest and blended
  with pygame's integer rule. It reproduces the VSP benchmark's map PNGs pixel for pixel
  (measured on levels 3, 5 and 6 of VSP-main/maze/task-main/maps). The sprite files are read from
  the installed `gym==0.26.2` package (never imported: only its image folder is used).
* Mirage's helper ("map_reasoning_path.png", whose picture is not public) is reconstructed as the
  map with the solution drawn on it: a red polyline through the cell centres of the path from the
  start to the goal, with an arrowhead on the goal cell. This is a reconstruction.
"""

from __future__ import annotations

import importlib.util
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from builders.imaging import load_image

SAFE, HOLE, START, GOAL = 0, -1, 1, 2
CODE_OF_CHAR = {"F": SAFE, "H": HOLE, "S": START, "G": GOAL}
CHAR_OF_CODE = {v: k for k, v in CODE_OF_CHAR.items()}
MOVES: dict[str, tuple[int, int]] = {"L": (0, -1), "D": (1, 0), "R": (0, 1), "U": (-1, 0)}
MOVE_WORDS = {"L": "LEFT", "D": "DOWN", "R": "RIGHT", "U": "UP"}

CELL_PX = 64  # gym: window min(64 * n, 512) wide, so 64 px per cell up to 8 x 8
BORDER_RGB = (180, 200, 230)  # gym's cell border
PATH_RGB = (220, 30, 30)  # the helper's path colour (reconstruction)
SPRITE_PACKAGE = "gym"  # gym 0.26.2 ships the sprites VSP was drawn with (gymnasium 1.x changed them)
SPRITE_FOLDER = ("envs", "toy_text", "img")


class MapError(ValueError):
    """A grid that is not a FrozenLake map (not square, no single start/goal, unknown codes)."""


@dataclass(frozen=True)
class VspMap:
    """A square grid of Mirage codes (rows of ints)."""

    grid: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        n = len(self.grid)
        if n < 2 or any(len(row) != n for row in self.grid):
            raise MapError(f"a VSP map is square (n >= 2), got rows of {[len(r) for r in self.grid]}")
        cells = [c for row in self.grid for c in row]
        if set(cells) - set(CHAR_OF_CODE):
            raise MapError(f"unknown cell codes {sorted(set(cells) - set(CHAR_OF_CODE))}")
        if cells.count(START) != 1 or cells.count(GOAL) != 1:
            raise MapError("a VSP map has exactly one start (1) and one goal (2)")

    @classmethod
    def from_codes(cls, rows: Sequence[Sequence[int]]) -> VspMap:
        return cls(tuple(tuple(int(c) for c in row) for row in rows))

    @classmethod
    def from_desc(cls, rows: Sequence[str]) -> VspMap:
        try:
            return cls(tuple(tuple(CODE_OF_CHAR[ch] for ch in row) for row in rows))
        except KeyError as exc:
            raise MapError(f"unknown map character {exc.args[0]!r}; use F, H, S, G") from None

    @property
    def size(self) -> int:
        return len(self.grid)

    @property
    def codes(self) -> list[list[int]]:
        return [list(row) for row in self.grid]

    @property
    def desc(self) -> list[str]:
        return ["".join(CHAR_OF_CODE[c] for c in row) for row in self.grid]

    def find(self, code: int) -> tuple[int, int]:
        return next((r, c) for r, row in enumerate(self.grid) for c, v in enumerate(row) if v == code)

    @property
    def start(self) -> tuple[int, int]:
        return self.find(START)

    @property
    def goal(self) -> tuple[int, int]:
        return self.find(GOAL)

    @property
    def holes(self) -> int:
        return sum(row.count(HOLE) for row in self.grid)


@dataclass(frozen=True)
class Rules:
    """How a plan is judged. Mirage: the final cell must be the goal; VSP (gym): reaching the goal
    ends the episode in victory. Both ignore moves off the grid; `off_grid_fails` is the strict
    reading in which such a move loses."""

    stop_at_goal: bool = False
    off_grid_fails: bool = False


MIRAGE_RULES = Rules()  # Mirage src/task.py:122-181
GYM_RULES = Rules(stop_at_goal=True)  # VSP eval.py: FrozenLake-v1, is_slippery=False
STRICT_RULES = Rules(off_grid_fails=True)


@dataclass(frozen=True)
class Outcome:
    success: bool
    status: str  # "goal", "hole", "off_grid", "stopped_short"
    steps: int  # moves executed


def simulate(vsp_map: VspMap, moves: Sequence[str], rules: Rules = MIRAGE_RULES) -> Outcome:
    """Walk `moves` (letters L/D/R/U) from the start under `rules`."""
    r, c = vsp_map.start
    n = vsp_map.size
    for i, move in enumerate(moves):
        dr, dc = MOVES[move]
        nr, nc = r + dr, c + dc
        if not (0 <= nr < n and 0 <= nc < n):
            if rules.off_grid_fails:
                return Outcome(False, "off_grid", i + 1)
            continue
        r, c = nr, nc
        if vsp_map.grid[r][c] == HOLE:
            return Outcome(False, "hole", i + 1)
        if rules.stop_at_goal and vsp_map.grid[r][c] == GOAL:
            return Outcome(True, "goal", i + 1)
    if vsp_map.grid[r][c] == GOAL:
        return Outcome(True, "goal", len(moves))
    return Outcome(False, "stopped_short", len(moves))


def boxed_content(text: str) -> str | None:
    """The content of the LAST `\\boxed{...}` (braces balanced), as mathruler's
    `extract_boxed_content` (which Mirage scores with) finds it; None when there is none."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth = 0
    body = text[start + len("\\boxed{") :]
    for i, ch in enumerate(body):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth == -1:
            return body[:i].strip()
    return None


def mirage_moves(text: str) -> tuple[str, ...]:
    """Mirage's parse of a plan (src/task.py:115-120): every U, D, L, R character of the
    upper-cased text, in order ("LEFT" gives L, "DOWN" gives D: each word holds exactly one)."""
    return tuple(ch for ch in text.upper() if ch in MOVES)


def shortest_paths(vsp_map: VspMap) -> tuple[int, list[tuple[str, ...]]]:
    """(length, every shortest start->goal plan in lexicographic order); length -1 = unsolvable.

    Plans step only on safe cells (off-grid moves never shorten a plan)."""
    n = vsp_map.size
    start, goal = vsp_map.start, vsp_map.goal
    dist = {start: 0}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        for dr, dc in MOVES.values():
            nxt = (r + dr, c + dc)
            if 0 <= nxt[0] < n and 0 <= nxt[1] < n and nxt not in dist \
                    and vsp_map.grid[nxt[0]][nxt[1]] != HOLE:
                dist[nxt] = dist[(r, c)] + 1
                queue.append(nxt)
    if goal not in dist:
        return -1, []

    def back(cell: tuple[int, int]) -> Iterator[tuple[str, ...]]:
        if cell == start:
            yield ()
            return
        for move, (dr, dc) in MOVES.items():
            prev = (cell[0] - dr, cell[1] - dc)
            if dist.get(prev) == dist[cell] - 1:
                for head in back(prev):
                    yield (*head, move)

    return dist[goal], sorted(back(goal))


def random_map(rng: np.random.Generator, size: int, hole_probability: float) -> VspMap:
    """Start and goal at two distinct uniform cells; every other cell a hole with
    `hole_probability` (not conditioned on solvability: the caller rejects unsolvable maps)."""
    cells = size * size
    start, goal = (int(x) for x in rng.choice(cells, size=2, replace=False))
    holes = rng.random(cells) < hole_probability
    flat = [HOLE if holes[i] else SAFE for i in range(cells)]
    flat[start], flat[goal] = START, GOAL
    return VspMap.from_codes([flat[r * size : (r + 1) * size] for r in range(size)])


def sprite_dir() -> Path:
    """The gym 0.26 FrozenLake sprite folder, or an error saying how to install it."""
    spec = importlib.util.find_spec(SPRITE_PACKAGE)  # locates the package without importing it
    folder = None
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*SPRITE_FOLDER)
    if folder is None or not (folder / "ice.png").is_file() or not (folder / "elf_down.png").is_file():
        raise MapError("VSP maps are drawn with gym 0.26's FrozenLake sprites, as the VSP benchmark "
                       "was; install them with `pip install gym==0.26.2` (only its image files are "
                       "read)")
    return folder


@lru_cache(maxsize=4)
def _sprites(cell: int) -> dict[str, np.ndarray]:
    folder = sprite_dir()
    names = {"ice": "ice.png", "hole": "hole.png", "goal": "goal.png", "stool": "stool.png",
             "elf": "elf_down.png"}
    out = {}
    for key, name in names.items():
        sprite = load_image(folder / name, mode="RGBA")
        out[key] = np.asarray(sprite.resize((cell, cell), Image.NEAREST), dtype=np.int32)
    return out


def _blit(canvas: np.ndarray, sprite: np.ndarray, y: int, x: int) -> None:
    """pygame's per-pixel-alpha blit onto an opaque surface: d + (((s - d) * a + s) >> 8)."""
    h, w = sprite.shape[:2]
    dst = canvas[y : y + h, x : x + w]
    src, alpha = sprite[..., :3], sprite[..., 3:4]
    canvas[y : y + h, x : x + w] = dst + (((src - dst) * alpha + src) >> 8)


def render_map(vsp_map: VspMap, cell: int = CELL_PX) -> Image.Image:
    """The map as gym 0.26 renders it at reset (see the module docstring)."""
    sprites = _sprites(cell)
    n = vsp_map.size
    canvas = np.zeros((n * cell, n * cell, 3), dtype=np.int32)
    overlay = {HOLE: "hole", GOAL: "goal", START: "stool"}
    for r, row in enumerate(vsp_map.grid):
        for c, code in enumerate(row):
            y, x = r * cell, c * cell
            _blit(canvas, sprites["ice"], y, x)
            if code in overlay:
                _blit(canvas, sprites[overlay[code]], y, x)
            canvas[y, x : x + cell] = canvas[y + cell - 1, x : x + cell] = BORDER_RGB
            canvas[y : y + cell, x] = canvas[y : y + cell, x + cell - 1] = BORDER_RGB
    sr, sc = vsp_map.start
    _blit(canvas, sprites["elf"], sr * cell, sc * cell)
    return Image.fromarray(canvas.astype(np.uint8), "RGB")


def path_cells(vsp_map: VspMap, moves: Sequence[str]) -> list[tuple[int, int]]:
    """The cells a plan visits, start included (off-grid moves stay in place)."""
    n = vsp_map.size
    cells = [vsp_map.start]
    for move in moves:
        dr, dc = MOVES[move]
        r, c = cells[-1]
        if 0 <= r + dr < n and 0 <= c + dc < n:
            cells.append((r + dr, c + dc))
    return cells


def render_path(vsp_map: VspMap, moves: Sequence[str], cell: int = CELL_PX) -> Image.Image:
    """Mirage's helper, reconstructed: the map with the plan drawn as a red line through the
    visited cells' centres and an arrowhead into the last cell."""
    image = render_map(vsp_map, cell)
    centres = [(c * cell + cell // 2, r * cell + cell // 2) for r, c in path_cells(vsp_map, moves)]
    draw = ImageDraw.Draw(image)
    width = max(2, cell // 10)
    if len(centres) > 1:
        draw.line(centres, fill=PATH_RGB, width=width, joint="curve")
        (x0, y0), (x1, y1) = centres[-2], centres[-1]
        ux, uy = np.sign(x1 - x0), np.sign(y1 - y0)  # axis-aligned last step
        tip = (x1, y1)
        back = (x1 - ux * cell // 4, y1 - uy * cell // 4)
        side = (uy * cell // 6, -ux * cell // 6)
        draw.polygon([tip, (back[0] + side[0], back[1] + side[1]),
                      (back[0] - side[0], back[1] - side[1])], fill=PATH_RGB)
    return image
