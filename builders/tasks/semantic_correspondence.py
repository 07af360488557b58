"""Semantic Correspondence from SPair-71k `trn` pairs (paper A.6), train and val.

Split by IMAGE, not by pair: SPair images recur in many pairs, so hashing pairs would put one
image in train and val. Every image (`JPEGImages/<category>/<stem>.jpg`) is hashed into a split
(`ctx.owns`, `split_fractions`); a pair is used only by the split owning both of its images. A pair
whose images fall in different splits is used by neither and counted `pair_crosses_splits` (with
80/20 fractions about a third of the pairs; val keeps about 4% of them, still thousands).

Per pair (one example each): a correspondence is valid when both its points are finite,
non-negative and inside their image (sizes of the decoded images, which must agree with the
pair file's `*_imsize`). Pairs with fewer than `min_valid_keypoints` valid correspondences are
rejected. REF is one valid source keypoint; the 4 candidates on the target are its true
correspondence and 3 other valid keypoints of the pair, each at least
`min_candidate_separation_frac` of the target's longer side from the others
(`builders.correspondence.pick_keypoints`). Both images are drawn at original resolution and the
true point takes the balanced answer slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from builders.correspondence import correspondence_example, pick_keypoints
from builders.record import Example
from builders.registry import BuilderParams
from builders.sources import spair

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """Semantic Correspondence's `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    source_split: str
    layout: str
    min_valid_keypoints: int
    split_fractions: dict[str, float]
    min_candidate_separation_frac: float


def valid_keypoints(kps: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """Which (x, y) rows are finite and non-negative and, given (width, height), inside it."""
    ok = np.isfinite(kps).all(axis=1)
    ok[ok] = (kps[ok] >= 0).all(axis=1)
    if size is not None:
        ok[ok] = (kps[ok, 0] < size[0]) & (kps[ok, 1] < size[1])
    return ok


def build(ctx: BuildContext) -> Iterator[Example]:
    p = ctx.params
    root = spair.find_root(ctx.source_root)
    split = p["source_split"]
    ctx.note_source(spair.layout_file(root, p["layout"], split))
    lines = spair.layout_lines(root, p["layout"], split)
    need = p["min_valid_keypoints"]
    for i in ctx.rng("order").permutation(len(lines)):
        ref = spair.parse_pair_name(lines[i])
        if ref is None:
            ctx.reject("malformed_layout_line")
            continue
        owned = (ctx.owns(ref.src_image), ctx.owns(ref.trg_image))
        if not any(owned):
            continue  # another split's pair
        if not all(owned):
            ctx.reject("pair_crosses_splits")
            continue
        try:
            ann = spair.read_pair(root, split, ref)
        except spair.BadPair as exc:
            ctx.reject(exc.reason)
            continue
        ctx.note_source(root / ref.annotation(split))
        # Cheap pre-check before decoding: coordinates must at least be finite and non-negative.
        if (valid_keypoints(ann.src_kps) & valid_keypoints(ann.trg_kps)).sum() < need:
            ctx.reject("too_few_valid_keypoints")
            continue
        src_img = ctx.load_image(root / ref.src_image)
        trg_img = ctx.load_image(root / ref.trg_image) if src_img is not None else None
        if src_img is None or trg_img is None:
            continue
        if ann.src_size not in (None, src_img.size) or ann.trg_size not in (None, trg_img.size):
            ctx.reject("image_size_mismatch")  # keypoints are in the annotated image's pixels
            continue
        valid = (valid_keypoints(ann.src_kps, src_img.size)
                 & valid_keypoints(ann.trg_kps, trg_img.size))
        if valid.sum() < need:
            ctx.reject("too_few_valid_keypoints")
            continue
        idx = np.flatnonzero(valid)
        src_kps, trg_kps = ann.src_kps[idx], ann.trg_kps[idx]
        ids = [ann.kps_ids[k] for k in idx]
        picked = pick_keypoints(ctx, ctx.rng("example", ref.name), trg_kps, trg_img.size)
        if picked is None:
            continue
        r, ds = picked
        yield correspondence_example(
            ctx, src_img, trg_img, src_kps[r], trg_kps[r], [trg_kps[d] for d in ds],
            source={
                "dataset": spair.NAME,
                "source_images": [ref.src_image, ref.trg_image],
                "pair": ref.name,
                "pair_id": ref.pair_id,
                "category": ref.category,
                "layout": p["layout"],
                "source_split": split,
                "valid_keypoint_ids": ids,
                "ref_keypoint": ids[r],
                "seed": ctx.seed,
            },
            keypoints=(ids[r], [ids[d] for d in ds]),
        )
