"""Confirmation scores of one (reference, candidate) image pair on aligned views.

A training image may show the reference resized, re-encoded, cropped (or the reference may be the
crop), with boxes or rings drawn on it. Views are square grayscale, so resizing and aspect changes
already line up; crops are lined up by multi-scale template matching on the blurred views (the
blur keeps drawn markers from steering the match): at each scale in `align_scales`, the view with
the smaller field of view is shrunk to that scale and slid over the other. The search runs on the
32 px coarse views; the best few placements are refined at full view resolution within a few
pixels (a search over a window only a few pixels wider than the template). The pHash
distance and the SSIMs are measured at the winning alignment, on the overlapping region only.

SSIM is scikit-image's, computed as a full map and averaged over the *structured* windows only
(local standard deviation above `structure_std` in either view): two different objects on the
same plain background otherwise score as near-copies, because flat windows are identical.
`ssim_median` is the median of the raw map over those windows: above ~0.9 it says most of the
image is unchanged even where drawn markers differ on both sides (a BLINK image with its rings
against our rendering of the same photo with other rings), which no mean can say.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import uniform_filter
from skimage.metrics import structural_similarity

from dedup.config import DedupConfig
from dedup.signals import COARSE, ImageSignals, blur, hamming, phash64

REFINE_TOP = 3  # coarse placements refined at full resolution: the coarse winner is sometimes
#                 one scale step off, the right one is always among the next two
REFINE_PX = 2   # refinement radius in view pixels (one coarse pixel is view_size / 32)


@dataclass(frozen=True)
class PairScores:
    """Scores of one pair; `align` says how the views were lined up ("full", "cand_in_ref@0.90"
    = the candidate shows part of the reference, 90% of its side, "ref_in_cand@0.90" the
    reverse); `ncc` is the blurred views' normalised cross-correlation there."""

    phash_whole: int
    phash: int
    ssim_raw: float
    ssim_blur: float
    ssim_median: float
    ncc: float
    align: str


SSIM_WIN = 7  # scikit-image's default window; the structure mask uses the same one


def _local_std(v: np.ndarray) -> np.ndarray:
    x = v.astype(np.float64)
    m = uniform_filter(x, SSIM_WIN)
    return np.sqrt(np.maximum(uniform_filter(x * x, SSIM_WIN) - m * m, 0.0))


def ssim_stats(o_raw: np.ndarray, i_raw: np.ndarray, o_blur: np.ndarray, i_blur: np.ndarray,
               structure_std: float, min_structure: float) -> tuple[float, float, float]:
    """(raw mean, blurred mean, raw median) of SSIM over the structured windows; all windows
    when fewer than `min_structure` of them are structured (two nearly flat images)."""
    _, s_raw = structural_similarity(o_raw, i_raw, data_range=255, full=True, win_size=SSIM_WIN)
    _, s_blur = structural_similarity(o_blur, i_blur, data_range=255, full=True, win_size=SSIM_WIN)
    mask = (_local_std(o_raw) > structure_std) | (_local_std(i_raw) > structure_std)
    if mask.mean() < min_structure:
        mask = np.ones_like(mask)
    return float(s_raw[mask].mean()), float(s_blur[mask].mean()), float(np.median(s_raw[mask]))


def _coarse_placements(ref: ImageSignals, cand: ImageSignals, scales: tuple[float, ...]):
    """(ncc, label, scale, outer, inner, x, y) for "full" and the best placement per scale and
    direction, on the coarse views."""
    full = float(cv2.matchTemplate(ref.coarse, cand.coarse, cv2.TM_CCOEFF_NORMED)[0, 0])
    out = [(full, "full", 1.0, ref, cand, 0, 0)]
    for s in scales:
        side = max(4, round(COARSE * s))
        for label, outer, inner in (("cand_in_ref", ref, cand), ("ref_in_cand", cand, ref)):
            small = cv2.resize(inner.coarse, (side, side), interpolation=cv2.INTER_AREA)
            res = cv2.matchTemplate(outer.coarse, small, cv2.TM_CCOEFF_NORMED)
            _, ncc, _, (x, y) = cv2.minMaxLoc(res)
            out.append((float(ncc), label, s, outer, inner, x, y))
    return out


def _refine(outer_blur: np.ndarray, tmpl: np.ndarray, x0: int, y0: int) -> tuple[float, int, int]:
    """Best (ncc, x, y) of `tmpl` over shifts within REFINE_PX of (x0, y0)."""
    size, side = outer_blur.shape[0], tmpl.shape[0]
    xa, ya = max(0, x0 - REFINE_PX), max(0, y0 - REFINE_PX)
    xb, yb = min(size - side, x0 + REFINE_PX), min(size - side, y0 + REFINE_PX)
    res = cv2.matchTemplate(outer_blur[ya:yb + side, xa:xb + side], tmpl, cv2.TM_CCOEFF_NORMED)
    _, ncc, _, (dx, dy) = cv2.minMaxLoc(res)
    return float(ncc), xa + dx, ya + dy


def compare(ref: ImageSignals, cand: ImageSignals, cfg: DedupConfig) -> PairScores:
    """Scores of a decodable pair (both `ok`)."""
    scales, sigma = cfg.align_scales, cfg.blur_sigma
    placements = sorted(_coarse_placements(ref, cand, scales), key=lambda p: -p[0])[:REFINE_TOP]
    best = None
    for _, label, s, outer, inner, cx, cy in placements:
        size = outer.view.shape[0]
        if label == "full":
            ncc = float(cv2.matchTemplate(ref.view_blur, cand.view_blur, cv2.TM_CCOEFF_NORMED)[0, 0])
            cand_best = (ncc, "full", ref.view, cand.view, ref.view_blur, cand.view_blur)
        else:
            side = round(size * s)
            i_raw = cv2.resize(inner.view, (side, side), interpolation=cv2.INTER_AREA)
            i_blur = blur(i_raw, sigma)
            scale = size / COARSE
            ncc, x, y = _refine(outer.view_blur, i_blur, round(cx * scale), round(cy * scale))
            cand_best = (ncc, f"{label}@{s:.3f}".rstrip("0"), outer.view[y:y + side, x:x + side],
                         i_raw, outer.view_blur[y:y + side, x:x + side], i_blur)
        if best is None or cand_best[0] > best[0]:
            best = cand_best
    ncc, label, o_raw, i_raw, o_blur, i_blur = best
    raw, blurred, median = ssim_stats(o_raw, i_raw, o_blur, i_blur, cfg.structure_std,
                                      cfg.structure_min_fraction)
    return PairScores(
        phash_whole=hamming(ref.phash, cand.phash),
        phash=hamming(phash64(o_raw), phash64(i_raw)),
        ssim_raw=raw,
        ssim_blur=blurred,
        ssim_median=median,
        ncc=ncc,
        align=label,
    )
