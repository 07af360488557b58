"""The decision for one (reference image, candidate image) pair, with the named rules that fired.

Two rule sets; `[dedup] rule` in tasks.toml chooses one (`DedupConfig.policy(task)`):

* "paper" (default), the paper's App. A: "CLIP image embeddings to retrieve high-similarity
  pairs, followed by perceptual hashing and SSIM-based image similarity checks", i.e. a retrieved
  pair is a duplicate when pHash AND SSIM both confirm it ([dedup.paper_rule]):
  - `phash_ssim_raw`: aligned pHash close and raw grayscale SSIM high;
  - `phash_ssim_blur`: aligned pHash close and blurred grayscale SSIM high, for the `blur_tasks`
    only (Localization, A.3: "perceptual hashing and SSIM ... on both raw and blurred grayscale
    images"; read as: either view may confirm, since the blurred one exists to see past the
    drawn boxes).
* "any", stricter (more pairs flagged): a pair is a duplicate when any rule fires, including
  rules on SSIM alone ([dedup.rules]):
  - `ssim_raw`: aligned grayscale SSIM high: a resized, re-encoded or colour-jittered copy;
  - `phash_ssim`: aligned pHash close and blurred SSIM agrees;
  - `ssim_blur`: blurred SSIM alone high: drawn boxes and rings flip pHash bits and pull raw SSIM
    down, blurring washes them out;
  - `ssim_local`: the median SSIM over structured windows is high (most of the image is
    unchanged) and the blurred SSIM agrees: markers drawn on both sides at different places.

Under both, identical files (`exact_bytes`, sha256) and identical decoded pixels
(`exact_pixels`, md5) are duplicates first (an identical image has pHash 0 and SSIM 1, so the
conjunction holds for it trivially). CLIP cosine never decides by itself: it only retrieves
candidates (and flags borderline pairs). A pair that is not a duplicate but within the
`[dedup.borderline]` margins of a rule of the chosen set is "borderline" and shown in the HTML
report for a person to look at. `dedup calibrate` reports both sets' recall and false positives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dedup.compare import PairScores
from dedup.config import RULE_SET_NAMES, Borderline, Policy

DUPLICATE, BORDERLINE, DISTINCT = "duplicate", "borderline", "distinct"


@dataclass(frozen=True)
class Decision:
    verdict: str
    rule: str                 # the strongest rule that fired ("" when none did)
    fired: tuple[str, ...]    # every rule that fired, strongest first


Check = Callable[[PairScores, Policy, float, int], bool]

# name -> test given (scores, policy, ssim slack, phash slack); slack 0 is the rule itself.
PAPER_RULES: tuple[tuple[str, Check], ...] = (
    ("phash_ssim_raw", lambda s, q, e, p: s.phash <= q.paper.phash_max + p
     and s.ssim_raw >= q.paper.ssim_min - e),
    ("phash_ssim_blur", lambda s, q, e, p: q.blurred and s.phash <= q.paper.phash_max + p
     and s.ssim_blur >= q.paper.ssim_blur_min - e),
)
ANY_RULES: tuple[tuple[str, Check], ...] = (
    ("ssim_raw", lambda s, q, e, p: s.ssim_raw >= q.any.ssim_raw_min - e),
    ("phash_ssim", lambda s, q, e, p: s.phash <= q.any.phash_max + p
     and s.ssim_blur >= q.any.phash_ssim_blur_min - e),
    ("ssim_blur", lambda s, q, e, p: s.ssim_blur >= q.any.ssim_blur_min - e),
    ("ssim_local", lambda s, q, e, p: s.ssim_median >= q.any.ssim_median_min - e
     and s.ssim_blur >= q.any.ssim_local_blur_min - e),
)
RULE_SETS = dict(zip(RULE_SET_NAMES, (PAPER_RULES, ANY_RULES), strict=True))
# Strongest first: the order in which a removal reports its evidence.
RULE_NAMES = ("exact_bytes", "exact_pixels", *(n for n, _ in PAPER_RULES + ANY_RULES))


def decide(scores: PairScores, cosine: float, exact: str | None, policy: Policy,
           border: Borderline) -> Decision:
    rules = RULE_SETS[policy.rule]
    fired = tuple(([exact] if exact else []) + [n for n, f in rules if f(scores, policy, 0.0, 0)])
    if fired:
        return Decision(DUPLICATE, fired[0], fired)
    near = [f"near_{n}" for n, f in rules
            if f(scores, policy, border.ssim_margin, border.phash_margin)]
    if cosine >= border.cosine_min:  # callers pass inf for random weights: cosine means nothing
        near.append("high_cosine")
    if near:
        return Decision(BORDERLINE, near[0], tuple(near))
    return Decision(DISTINCT, "", ())
