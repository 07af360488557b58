"""Functional Correspondence from FunKPoint (paper A.7): train, val and its own test split.

Split (`split_images`): the FunKPoint IMAGES are cut once into train/val/test by
`split_fractions` (80/10/10) with an rng shared by all splits, so every image is in exactly one
split whatever the split built or `--n`. The cut is action-aware: an image carries every action it
is labelled for, and the images are dealt by iterative stratification (Sechidis et al., 2011), so
each action's images are split about 80/10/10 and the totals are too (details in `split_images`).

Pairs: within the split and one action, the images labelled for it are shuffled and paired
(1st with 2nd, 3rd with 4th, ...): no image is used twice for that action (an odd one out is
counted `unpaired_image`); the first of a pair is the left (source) image, the second the right
(target). One pair is one example; pairs of all actions are visited in a seeded random order.

Example: keypoint index k in 1..`num_keypoints` (uniform) is REF on the left; on the right the
candidates are keypoint k and 3 of the other indices drawn at random, as the paper does
("three distractor keypoints sampled from the remaining indices", A.7). Normalised coordinates
are scaled by the decoded image's size. The action fills `{action}` in the prompt.

Sizes: val and test are every pair their images make, and the paper's 144 / 146 need them all
to survive; the real release (4,776 rows, 10 actions) makes ~236 / ~235 pairs per held-out split
(`builders.miniature.funkpoint.write_real_size`), so the paper's sampling always reaches the
sizes. `min_candidate_separation_frac` > 0 is an option, off by default: it keeps only candidates
that far apart (fraction of the right image's longer side; `builders.correspondence.
pick_keypoints` then re-draws k and the distractors), so drawn rings never overlap, at the cost of
the paper's uniform k and of pairs whose keypoints crowd together (counted
`no_separated_distractors`; a split left short stops the build with that count).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from builders.correspondence import correspondence_example, pick_keypoints
from builders.record import Example
from builders.registry import BuilderParams
from builders.sources import funkpoint
from builders.sources.funkpoint import Label

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """Functional Correspondence's `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    split_fractions: dict[str, float]
    num_keypoints: int
    min_candidate_separation_frac: float


def split_images(labels: list[Label], fractions: dict[str, float],
                 rng: np.random.Generator) -> dict[str, str]:
    """Image -> split, balanced per action by iterative stratification.

    Each split s wants fractions[s] of every action's images and of all images. Actions are taken
    rarest first (fewest images still unassigned; ties by name); each of that action's unassigned
    images, in an `rng`-shuffled order, goes to the split that still wants most of this action
    (ties: most images overall, then registry order), and is subtracted from what that split
    wants of every action the image carries. Rare actions are dealt first, while every split
    still has room for them; an image is dealt once, so it is in exactly one split.
    """
    images = sorted({lab.image for lab in labels})
    actions_of: dict[str, set[str]] = defaultdict(set)
    for lab in labels:
        actions_of[lab.image].add(lab.action)
    order = [images[i] for i in rng.permutation(len(images))]
    by_action: dict[str, list[str]] = defaultdict(list)
    for img in order:
        for a in actions_of[img]:
            by_action[a].append(img)
    names = list(fractions)
    want_total = {s: fractions[s] * len(images) for s in names}
    want = {a: {s: fractions[s] * len(imgs) for s in names} for a, imgs in by_action.items()}
    assigned: dict[str, str] = {}
    while len(assigned) < len(images):
        left = {a: [i for i in imgs if i not in assigned] for a, imgs in by_action.items()}
        action = min((a for a in left if left[a]), key=lambda a: (len(left[a]), a))
        for img in left[action]:
            s = max(names, key=lambda s: (want[action][s], want_total[s], -names.index(s)))
            assigned[img] = s
            want_total[s] -= 1
            for a in actions_of[img]:
                want[a][s] -= 1
    return assigned


def make_pairs(ctx: BuildContext, labels: list[Label], mine: set[str]) -> list[tuple[Label, Label]]:
    """(left, right) pairs of this split: per action, its images shuffled and paired in order."""
    by_action: dict[str, list[Label]] = defaultdict(list)
    for lab in labels:  # sorted by (image, action), so each list is sorted by image
        if lab.image in mine:
            by_action[lab.action].append(lab)
    pairs = []
    for action in sorted(by_action):
        rows = by_action[action]
        order = ctx.rng("pairs", action).permutation(len(rows))
        if len(rows) % 2:
            ctx.reject("unpaired_image")
        pairs.extend((rows[order[i]], rows[order[i + 1]]) for i in range(0, len(rows) - 1, 2))
    return pairs


def _pixels(label: Label, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(label.keypoints, dtype=np.float64) * np.asarray(size, dtype=np.float64)


def build(ctx: BuildContext) -> Iterator[Example]:
    p = ctx.params
    root = funkpoint.find_root(ctx.source_root)
    ctx.note_source(root / funkpoint.LABELS)
    labels, dropped = funkpoint.read_labels(root, p["num_keypoints"])
    for reason, count in sorted(dropped.items()):
        ctx.reject(reason, count)
    owner = split_images(labels, p["split_fractions"], ctx.shared_rng("image_split"))
    mine = {img for img, s in owner.items() if s == ctx.split}
    pairs = make_pairs(ctx, labels, mine)
    for i in ctx.rng("order").permutation(len(pairs)):
        left, right = pairs[i]
        left_img = ctx.load_image(root / left.image)
        right_img = ctx.load_image(root / right.image) if left_img is not None else None
        if left_img is None or right_img is None:
            continue
        ref_kps, target = _pixels(left, left_img.size), _pixels(right, right_img.size)
        picked = pick_keypoints(ctx, ctx.rng("example", left.action, left.image, right.image),
                                target, right_img.size)
        if picked is None:
            continue
        k, ds = picked
        yield correspondence_example(
            ctx, left_img, right_img, ref_kps[k], target[k], [target[d] for d in ds],
            source={
                "dataset": funkpoint.NAME,
                "source_images": [left.image, right.image],
                "action": left.action,
                "left_image": left.image,
                "right_image": right.image,
                "left_object": left.object_category,
                "right_object": right.object_category,
                "ref_keypoint": k + 1,
                "seed": ctx.seed,
            },
            keypoints=(k + 1, [d + 1 for d in ds]),
            fields={"action": left.action},
        )
