"""The decision for one (reference image, candidate image) pair, with the named rules that fired.

Rules, strongest first (thresholds in tasks.toml [dedup.rules]):
- `exact_bytes`: identical file bytes (sha256).
- `exact_pixels`: identical decoded pixels (md5), e.g. a lossless re-encode.
- `ssim_raw`: aligned grayscale SSIM high: a resized, re-encoded or colour-jittered copy.
- `phash_ssim`: aligned pHash close and blurred SSIM agrees: hash and structure both say copy.
- `ssim_blur`: blurred SSIM alone high: drawn boxes and rings flip pHash bits and pull raw SSIM
  down, blurring washes them out.
- `ssim_local`: the median SSIM over structured windows is high (most of the image is
  unchanged) and the blurred SSIM agrees: markers drawn on both sides at different places.
CLIP cosine never decides by itself: it only retrieves candidates (and flags borderline pairs).
A pair that is not a duplicate but within the `[dedup.borderline]` margins of a rule is
"borderline" and shown in the HTML report for a person to look at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dedup.compare import PairScores
from dedup.config import Borderline, Rules

DUPLICATE, BORDERLINE, DISTINCT = "duplicate", "borderline", "distinct"


@dataclass(frozen=True)
class Decision:
    verdict: str
    rule: str                 # the strongest rule that fired ("" when none did)
    fired: tuple[str, ...]    # every rule that fired, strongest first


Check = Callable[[PairScores, Rules, float, int], bool]

# name -> test given (scores, rules, ssim slack, phash slack); slack 0 is the rule itself.
SCORE_RULES: tuple[tuple[str, Check], ...] = (
    ("ssim_raw", lambda s, r, e, p: s.ssim_raw >= r.ssim_raw_min - e),
    ("phash_ssim", lambda s, r, e, p: s.phash <= r.phash_max + p
     and s.ssim_blur >= r.phash_ssim_blur_min - e),
    ("ssim_blur", lambda s, r, e, p: s.ssim_blur >= r.ssim_blur_min - e),
    ("ssim_local", lambda s, r, e, p: s.ssim_median >= r.ssim_median_min - e
     and s.ssim_blur >= r.ssim_local_blur_min - e),
)
RULE_NAMES = ("exact_bytes", "exact_pixels", *(n for n, _ in SCORE_RULES))


def decide(scores: PairScores, cosine: float, exact: str | None, rules: Rules,
           border: Borderline) -> Decision:
    fired = tuple(([exact] if exact else []) + [n for n, f in SCORE_RULES if f(scores, rules, 0.0, 0)])
    if fired:
        return Decision(DUPLICATE, fired[0], fired)
    near = [f"near_{n}" for n, f in SCORE_RULES
            if f(scores, rules, border.ssim_margin, border.phash_margin)]
    if cosine >= border.cosine_min:  # callers pass inf for random weights: cosine means nothing
        near.append("high_cosine")
    if near:
        return Decision(BORDERLINE, near[0], tuple(near))
    return Decision(DISTINCT, "", ())
