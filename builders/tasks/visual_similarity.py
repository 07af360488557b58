"""Visual Similarity from NIGHTS triplets (paper A.9).

Our train/val come from NIGHTS' own csv split (`source_splits`), so no triplet is in two of our
splits. Rows are filtered up front, so the rejection counts cover the whole source split whatever
`--n` is: rows with fewer than `min_votes` votes (`too_few_votes`; DreamSim keeps >= 6) and ties
(`tied_votes`); malformed rows are counted over the whole file, as their split may be unreadable.
The closer candidate follows DreamSim, whose target is `right_vote`: right when it is above
`closer_vote_threshold` (0.5), left when below; exactly the threshold is a tie. image_1 is the
reference; the two distortions go to image_2 / image_3 with the human-preferred one at
`ctx.answer_slot()`, so which original side lands on A is random.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builders.record import Example
from builders.registry import BuilderParams
from builders.sources import nights
from builders.sources.nights import Triplet

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """Visual Similarity's `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    min_votes: int
    source_splits: dict[str, str]
    closer_vote_threshold: float


def _source_split(ctx: BuildContext) -> str:
    splits = ctx.params["source_splits"]
    if ctx.split not in splits:
        raise ValueError(
            f"visual_similarity: no NIGHTS split feeds our {ctx.split!r} split; "
            f"tasks.toml [tasks.visual_similarity.params].source_splits has {sorted(splits)}"
        )
    return splits[ctx.split]


def _eligible(triplets: list[Triplet], ctx: BuildContext) -> list[Triplet]:
    """This split's triplets that pass the vote filters; the others are counted by reason."""
    wanted, p = _source_split(ctx), ctx.params
    out = []
    for t in triplets:
        if t.split != wanted:
            continue
        if t.votes < p["min_votes"]:
            ctx.reject("too_few_votes")
        elif t.right_vote == p["closer_vote_threshold"]:
            ctx.reject("tied_votes")
        else:
            out.append(t)
    return out


def _votes_value(v: float) -> int | float:
    return int(v) if v.is_integer() else v


def build(ctx: BuildContext) -> Iterator[Example]:
    root = nights.find_root(ctx.source_root)
    triplets, malformed = nights.read_triplets(root)
    ctx.note_source(root / nights.CSV)
    for reason, count in sorted(malformed.items()):
        ctx.reject(reason, count)
    eligible = _eligible(triplets, ctx)
    letters = ctx.spec.letters
    for i in ctx.rng("order").permutation(len(eligible)):
        t = eligible[i]
        images = {
            side: ctx.load_image(root / rel)
            for side, rel in (("ref", t.ref_path), ("left", t.left_path), ("right", t.right_path))
        }
        if any(img is None for img in images.values()):
            continue
        closer = "right" if t.right_vote > ctx.params["closer_vote_threshold"] else "left"
        farther = "left" if closer == "right" else "right"
        slot = ctx.answer_slot()
        sides = [farther, farther]
        sides[slot] = closer
        paths = {"left": t.left_path, "right": t.right_path}
        yield Example(
            images=[images["ref"], images[sides[0]], images[sides[1]]],
            answer=ctx.letter(slot),
            source={
                "dataset": "nights",
                "source_split": t.split,
                "source_images": [t.ref_path, paths[sides[0]], paths[sides[1]]],
                "triplet_id": t.id,
                "ref_path": t.ref_path,
                "left_path": t.left_path,
                "right_path": t.right_path,
                "left_vote": t.left_vote,
                "right_vote": t.right_vote,
                "votes": _votes_value(t.votes),
                "is_imagenet": t.is_imagenet,
                "prompt": t.prompt,
                "closer": closer,
                "options": {letters[k]: side for k, side in enumerate(sides)},
                "seed": ctx.seed,
            },
        )
