"""VSP spatial planning (FrozenLake maps) in the format Mirage trains on.

Each example is one map (rendered as the benchmark renders it, `builders.vsp_maps`), Mirage's
prompt (its training prompt on train/val, its test prompt on test) and the answer
`\\boxed{RIGHT, DOWN}` naming one shortest plan, drawn at random among all shortest plans (any
plan reaching the goal scores as right). Its helper image is the map with that plan drawn.

Maps: with the official files under the source root (`builders.sources.vsp`) the test split is
the benchmark's maps of the registry's levels and train/val are Mirage's training rows (their own
answers, checked by simulation; hashed 80/20 by map id); otherwise maps are generated: for each
level of a seeded schedule (blocks holding level i `level_weights[i]` times), maps are drawn
(`random_map`) until one is solvable, owned by this split (its grid hashed by
`split_fractions`) and new in it. Rejections are counted by reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builders.imaging import load_image
from builders.record import Example
from builders.registry import BuilderParams
from builders.sources import vsp as source
from builders.splitting import assign_split
from builders.vsp_maps import (
    MIRAGE_RULES,
    MOVE_WORDS,
    VspMap,
    boxed_content,
    mirage_moves,
    random_map,
    render_map,
    render_path,
    shortest_paths,
    simulate,
)

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """VSP's `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    levels: tuple[int, ...]
    level_weights: dict[str, tuple[int, ...]]
    hole_probability: float
    max_draws_per_map: int
    split_fractions: dict[str, float]
    official_split_fractions: dict[str, float]
    helper_images: bool
    example_line: str


def plan_answer(moves: tuple[str, ...] | list[str]) -> str:
    """Mirage's answer text: `\\boxed{RIGHT, DOWN}`."""
    return "\\boxed{" + ", ".join(MOVE_WORDS[m] for m in moves) + "}"


def level_schedule(ctx: BuildContext) -> Iterator[int]:
    """Levels in seeded blocks, each level repeated by its weight (see the module docstring)."""
    levels, weights = ctx.params["levels"], ctx.params["level_weights"][ctx.split]
    block = [lvl for lvl, w in zip(levels, weights, strict=True) for _ in range(int(w))]
    rng = ctx.rng("levels")
    while True:
        yield from (block[i] for i in rng.permutation(len(block)))


def _example(ctx: BuildContext, vsp_map: VspMap, moves: tuple[str, ...], answer: str,
             image, helper, provenance: dict) -> Example:
    length, plans = shortest_paths(vsp_map)
    split_line = "" if ctx.split == "test" else ctx.params["example_line"]
    return Example(
        images=[image],
        answer=answer,
        fields={"example": split_line},
        helper=helper if ctx.params["helper_images"] else None,
        source={
            **provenance,
            "level": vsp_map.size,
            "map_desc": vsp_map.codes,
            "gold_moves": ",".join(moves),
            "shortest_length": length,
            "shortest_plans": len(plans),
            "holes": vsp_map.holes,
            "seed": ctx.seed,
        },
    )


def _generated(ctx: BuildContext) -> Iterator[Example]:
    p = ctx.params
    draw = ctx.rng("maps")
    seen: set[str] = set()
    for level in level_schedule(ctx):
        for _ in range(int(p["max_draws_per_map"])):
            vsp_map = random_map(draw, level, float(p["hole_probability"]))
            key = "/".join(vsp_map.desc)
            length, plans = shortest_paths(vsp_map)
            if length < 0:
                ctx.reject("unsolvable")
            elif assign_split(key, p["split_fractions"], ctx.seed) != ctx.split:
                ctx.reject("map_of_another_split")
            elif key in seen:
                ctx.reject("duplicate_map")
            else:
                break
        else:
            return  # this level ran out of new maps; the driver reports the shortfall
        seen.add(key)
        moves = plans[int(draw.integers(len(plans)))]
        yield _example(
            ctx, vsp_map, moves, plan_answer(moves), render_map(vsp_map),
            render_path(vsp_map, moves),
            {"dataset": "vsp", "release": "generated", "source_images": [], "map_id": key,
             "helper": "reconstructed"},
        )


def _official(ctx: BuildContext) -> Iterator[Example]:
    p = ctx.params
    root = ctx.source_root
    if ctx.split == "test":
        by_level: dict[int, list[source.OfficialMap]] = {}
        for item in source.benchmark_maps(root, list(p["levels"])):
            by_level.setdefault(item.level, []).append(item)
        items: Iterator[source.OfficialMap] = _interleave(ctx, by_level)
    else:
        items = (row for row in source.mirage_rows(root)
                 if assign_split(row.key, p["official_split_fractions"], ctx.seed) == ctx.split)
    rng = ctx.rng("plans")
    for item in items:
        image = ctx.load_image(item.image)
        if image is None:
            continue
        length, plans = shortest_paths(item.vsp_map)
        if length < 0:
            ctx.reject("unsolvable")
            continue
        if item.answer is not None:
            moves = mirage_moves(boxed_content(item.answer) or "")
            if not simulate(item.vsp_map, moves, MIRAGE_RULES).success:
                ctx.reject("official_answer_fails")
                continue
            answer = item.answer
        else:
            moves = plans[int(rng.integers(len(plans)))]
            answer = plan_answer(moves)
        helper, made = None, "reconstructed"
        if item.helper is not None and item.helper.is_file():
            helper, made = load_image(item.helper), "official"
        yield _example(
            ctx, item.vsp_map, moves, answer, image,
            helper or render_path(item.vsp_map, moves),
            {"dataset": "vsp", "release": "benchmark" if ctx.split == "test" else "mirage",
             "source_images": [item.rel], "map_id": item.key, "helper": made},
        )


def _interleave(
    ctx: BuildContext, by_level: dict[int, list[source.OfficialMap]]
) -> Iterator[source.OfficialMap]:
    queues = {lvl: iter(items) for lvl, items in by_level.items()}
    for level in level_schedule(ctx):
        item = next(queues[level], None)
        if item is None:
            return
        yield item


def build(ctx: BuildContext) -> Iterator[Example]:
    if source.has_official(ctx.source_root):
        yield from _official(ctx)
    else:
        yield from _generated(ctx)

