"""The BLINK correspondence format shared by the correspondence builders: a red "REF" circle on
the source image and lettered red circles (A-D) on the target image, one of them the true
correspondence.

Owns two steps every keypoint-based correspondence task repeats: choosing a reference keypoint and
distractor keypoints that are distinguishable once drawn (`pick_keypoints`), and placing the true
point at the balanced answer slot, drawing both images at original resolution and recording the
geometry (`correspondence_example`). Both builders (SPair, FunKPoint) use it; the source keys it
writes (`ref`, `candidates`, `answer`, `image_sizes`) match the HPatches builder's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from builders.drawing import draw_points, draw_ref
from builders.record import Example

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext

Point = tuple[float, float]


def pick_keypoints(
    ctx: BuildContext, rng: np.random.Generator, target: np.ndarray,
    target_size: tuple[int, int],
) -> tuple[int, list[int]] | None:
    """A reference keypoint index and one distractor index per other option into `target`
    ((N, 2) pixel positions of the same keypoints in the target image of `target_size`).

    The reference is uniform over the keypoints; distractors are drawn at random among the others,
    keeping only those at least the task's `min_candidate_separation_frac` of the image's longer
    side from the true point and from each other (two keypoints annotated at nearly the same spot
    would make two options identical). A reference that leaves too few such distractors is
    replaced by the next one in random order; None when no reference works, counted as
    `no_separated_distractors`.
    """
    count = ctx.spec.num_options - 1
    min_separation = ctx.params["min_candidate_separation_frac"] * max(target_size)
    pts = np.asarray(target, dtype=np.float64).reshape(-1, 2)
    for ref in rng.permutation(len(pts)):
        chosen: list[int] = []
        for d in rng.permutation(len(pts)):
            if d == ref:
                continue
            taken = pts[[ref, *chosen]]
            if np.min(np.hypot(*(taken - pts[d]).T)) >= min_separation:
                chosen.append(int(d))
                if len(chosen) == count:
                    return int(ref), chosen
    ctx.reject("no_separated_distractors")
    return None


def _xy(p: Sequence[float]) -> list[float]:
    return [float(p[0]), float(p[1])]


def correspondence_example(
    ctx: BuildContext,
    source_image: Image.Image,
    target_image: Image.Image,
    ref: Point,
    true: Point,
    distractors: Sequence[Point],
    source: dict[str, Any],
    keypoints: tuple[Any, Sequence[Any]] | None = None,
    fields: dict[str, str] | None = None,
) -> Example:
    """The example: image 1 = source with REF at `ref`, image 2 = target with the true point at the
    balanced answer slot and the distractors, in their given order, in the other slots.

    `source` (dataset, source_images and the task's provenance) is completed with `ref`,
    `candidates` (letter -> [x, y] in target pixels), `answer` and `image_sizes`; with
    `keypoints` = (true keypoint, distractor keypoints), also `candidate_keypoints` (letter ->
    keypoint). Call it only for an example that is yielded: it takes the answer slot.
    """
    slot = ctx.answer_slot()
    letters = ctx.spec.letters
    points = [_xy(p) for p in distractors]
    points.insert(slot, _xy(true))
    candidates = {letters[i]: p for i, p in enumerate(points)}
    extra: dict[str, Any] = {}
    if keypoints is not None:
        held = list(keypoints[1])
        held.insert(slot, keypoints[0])
        extra["candidate_keypoints"] = {letters[i]: k for i, k in enumerate(held)}
    return Example(
        images=[draw_ref(source_image, ref), draw_points(target_image, candidates)],
        answer=ctx.letter(slot),
        source={
            **source,
            "ref": _xy(ref),
            "candidates": candidates,
            **extra,
            "answer": letters[slot],
            "image_sizes": {"source": list(source_image.size), "target": list(target_image.size)},
        },
        fields=dict(fields or {}),
    )
