"""Visual Correspondence from HPatches sequences (paper A.4), train, val and its own test split.

Split: viewpoint (`v_*`) and illumination (`i_*`) sequences are shuffled separately with a
split-independent rng and cut 80/10/10 (`splitting.partition`), then merged, so every sequence
(and every image) is in exactly one split whatever `--n` or the split being built.

Examples: every forward pair (i, j), i < j, j - i >= `min_pair_gap`, of every sequence of the
split. For a pair, reference points are drawn in image i inside the border margin and apart from
each other, warped with H_i_j = H_1_j @ inv(H_1_i), and kept when they land inside image j's
margin; each kept point gets 3 distractors inside image j's margin, at least
`distractor_min_dist_frac` from the true point and from each other. One kept point is one example.
Margins and distances are fractions of min(width, height) of the image they live in.

Order (spread over sequences and pairs): the pairs are visited in a seeded random order, in rounds;
round r yields the r-th kept point of every pair that has one, so no pair gives a second example
before every pair has given its first, and a pair gives at most `refs_per_pair` examples. A pair's
points are drawn once, from an rng keyed by (sequence, i, j), when the pair is first visited.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from builders.correspondence import correspondence_example
from builders.geometry import inside, sample_separated_points, warp_points
from builders.record import Example
from builders.registry import BuilderParams
from builders.sources import hpatches
from builders.sources.hpatches import HSequence
from builders.splitting import partition

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """Visual Correspondence's `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    split_fractions: dict[str, float]
    image_indices: tuple[int, ...]
    min_pair_gap: int
    border_margin_frac: float
    ref_min_separation_frac: float
    distractor_min_dist_frac: float
    refs_per_pair: int
    max_point_tries: int

Point = tuple[float, float]


@dataclass(frozen=True)
class Candidate:
    """One reference point of a pair: REF in image i, its true image in j, the distractors in j."""

    ref: Point
    true: Point
    distractors: list[Point]


def split_sequences(ctx: BuildContext, sequences: list[HSequence]) -> list[HSequence]:
    """This split's sequences: each kind partitioned on its own, then merged (sorted by name)."""
    mine = []
    for kind in hpatches.KINDS:
        of_kind = [s for s in sequences if s.kind == kind]
        parts = partition(of_kind, ctx.params["split_fractions"], ctx.shared_rng("sequences", kind))
        mine.extend(parts[ctx.split])
    return sorted(mine, key=lambda s: s.name)


def _plan_pair(ctx: BuildContext, rng: np.random.Generator, H: np.ndarray,
               size_i: tuple[int, int], size_j: tuple[int, int]) -> list[Candidate]:
    """Up to `refs_per_pair` candidates: refs drawn one at a time (so that a ref landing outside
    image j frees its slot for another try) within `max_point_tries` draws."""
    p = ctx.params
    (wi, hi), (wj, hj) = size_i, size_j
    margin_i, margin_j = p["border_margin_frac"] * min(wi, hi), p["border_margin_frac"] * min(wj, hj)
    ref_sep = p["ref_min_separation_frac"] * min(wi, hi)
    distractor_dist = p["distractor_min_dist_frac"] * min(wj, hj)
    n_distractors = ctx.spec.num_options - 1
    out: list[Candidate] = []
    for _ in range(p["max_point_tries"]):
        if len(out) == p["refs_per_pair"]:
            break
        # one uniform draw, kept only if it is apart from the refs already chosen
        drawn = sample_separated_points(rng, 1, wi, hi, margin_i, ref_sep,
                                        avoid=[c.ref for c in out], max_tries=1)
        if not drawn:
            continue
        ref = drawn[0]
        true = tuple(float(v) for v in warp_points(H, [ref])[0])
        if not inside(true, wj, hj, margin_j):
            ctx.reject("ref_lands_outside_target")
            continue
        distractors = sample_separated_points(rng, n_distractors, wj, hj, margin_j, distractor_dist,
                                              avoid=[true], max_tries=p["max_point_tries"])
        if len(distractors) < n_distractors:
            ctx.reject("no_room_for_distractors")
            continue
        out.append(Candidate(ref, true, distractors))
    return out


def _load_pair(ctx: BuildContext, seq: HSequence, i: int, j: int) -> tuple[Image.Image, Image.Image] | None:
    img_i, img_j = ctx.load_image(seq.image_path(i)), ctx.load_image(seq.image_path(j))
    return None if img_i is None or img_j is None else (img_i, img_j)


def _example(ctx: BuildContext, seq: HSequence, i: int, j: int, H: np.ndarray,
             images: tuple[Image.Image, Image.Image], cand: Candidate) -> Example:
    source = {
        "dataset": hpatches.NAME,
        "source_images": [seq.image_rel(i), seq.image_rel(j)],
        "sequence": seq.name,
        "kind": hpatches.KINDS[seq.kind],
        "pair": [i, j],
        "H_i_j": H.tolist(),
        "seed": ctx.seed,
    }
    return correspondence_example(ctx, images[0], images[1], cand.ref, cand.true, cand.distractors, source)


def build(ctx: BuildContext) -> Iterator[Example]:
    p = ctx.params
    root = hpatches.find_root(ctx.source_root)
    sequences = split_sequences(ctx, hpatches.list_sequences(root))
    indices = list(p["image_indices"])
    pairs = [(i, j) for i in indices for j in indices if i < j and j - i >= p["min_pair_gap"]]
    # Read every homography of the split first: a malformed file stops the build before any work.
    homographies = {}
    for seq in sequences:
        homographies[seq.name] = hpatches.read_homographies(seq, indices)
        for k in indices:
            if k != 1:
                ctx.note_source(seq.homography_path(k))
    units = [(seq, i, j) for seq in sequences for i, j in pairs]
    order = ctx.rng("order").permutation(len(units))
    plans: dict[int, list[Candidate]] = {}
    for r in range(p["refs_per_pair"]):
        for u in order:
            if u in plans and r >= len(plans[u]):
                continue
            seq, i, j = units[u]
            images = _load_pair(ctx, seq, i, j)
            if images is None:
                plans.setdefault(u, [])  # counted by load_image; never retried
                continue
            H = hpatches.pair_homography(homographies[seq.name], i, j)
            if u not in plans:
                rng = ctx.rng("pair", seq.name, i, j)
                plans[u] = _plan_pair(ctx, rng, H, images[0].size, images[1].size)
            if r < len(plans[u]):
                yield _example(ctx, seq, i, j, H, images, plans[u][r])
