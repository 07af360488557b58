"""From image-pair decisions to example removals, including the pair-aware rule.

An example of a single- or multi-image task (Localization, Counting, Art Style, Visual
Similarity) is removed when any of its images, rendered or raw, duplicates any reference image.
An example of a pair task (Semantic Correspondence) is removed only when its two images match the
two images of one reference example, in the same order ("aligned") or swapped: one shared image
alone is shown as a partial match for review, not removed. A raw image whose slot is unknown
(slot 0) stands for either image of its example.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from dedup.catalog import ImageRef
from dedup.compare import PairScores
from dedup.decide import DUPLICATE, RULE_NAMES, Decision

UNREADABLE_RULE = "unreadable_image"


@dataclass
class PairRecord:
    """One candidate pair: a row of pairs.jsonl."""

    task: str
    ref: ImageRef
    cand: ImageRef
    cosine: float
    scores: PairScores
    decision: Decision
    example_removed: bool = False

    def row(self) -> dict:
        s = self.scores
        return {
            "task": self.task,
            "reference": {"split": self.ref.split, "idx": self.ref.idx, "slot": self.ref.slot},
            "candidate": {"split": self.cand.split, "idx": self.cand.idx, "slot": self.cand.slot,
                          "kind": self.cand.kind, "source_image": self.cand.source_rel or None},
            "cosine": round(self.cosine, 5),
            "phash": s.phash, "phash_whole": s.phash_whole,
            "ssim_raw": round(s.ssim_raw, 5), "ssim_blur": round(s.ssim_blur, 5),
            "ssim_median": round(s.ssim_median, 5),
            "ncc": round(s.ncc, 5), "align": s.align,
            "decision": self.decision.verdict, "rule": self.decision.rule,
            "rules_fired": list(self.decision.fired),
            "example_removed": self.example_removed,
        }


@dataclass
class Removal:
    """Why one training example goes: its rule, the reference example and the matching pairs."""

    split: str
    idx: str
    rule: str
    reference_idx: str = ""
    order: str = ""            # pair tasks: "aligned" or "swapped"
    matches: list[str] = field(default_factory=list)

    def entry(self) -> dict:
        out = {"idx": self.idx, "rule": self.rule, "matches": self.matches}
        if self.reference_idx:
            out["reference_idx"] = self.reference_idx
        if self.order:
            out["order"] = self.order
        return out


def _covers(slots: set[tuple[int, int]], mapping: dict[int, int]) -> bool:
    """Every reference slot r is matched by candidate slot mapping[r] (or a slot-0 raw image)."""
    return all((mapping[r], r) in slots or (0, r) in slots for r in mapping)


def _rank(rule: str) -> int:
    return RULE_NAMES.index(rule) if rule in RULE_NAMES else len(RULE_NAMES)


def removals(pairs: list[PairRecord], pair_aware: bool,
             ref_slots: dict[str, int]) -> tuple[dict[tuple[str, str], Removal], list[PairRecord]]:
    """Removals keyed by (split, idx), and the duplicate pairs that did not remove anything
    (partial matches of pair tasks). Marks `example_removed` on the pairs that count."""
    dups = [p for p in pairs if p.decision.verdict == DUPLICATE]
    out: dict[tuple[str, str], Removal] = {}
    groups: dict[tuple[str, str, str], list[PairRecord]] = defaultdict(list)
    for p in dups:
        groups[(p.cand.split, p.cand.idx, p.ref.idx)].append(p)
    for (split, idx, ref_idx), members in sorted(groups.items()):
        order = ""
        if pair_aware:
            slots = {(p.cand.slot, p.ref.slot) for p in members}
            n = ref_slots.get(ref_idx, 1)
            if _covers(slots, {r: r for r in range(1, n + 1)}):
                order = "aligned"
            elif n == 2 and _covers(slots, {1: 2, 2: 1}):
                order = "swapped"
            else:
                continue
        for p in members:
            p.example_removed = True
        best = min((p.decision.rule for p in members), key=_rank)
        matches = [f"{p.cand.label} ~ {p.ref.label}" for p in members]
        prev = out.get((split, idx))
        if prev is None:
            out[(split, idx)] = Removal(split, idx, best, ref_idx, order, sorted(matches))
            continue
        prev.matches = sorted(prev.matches + matches)
        if _rank(best) < _rank(prev.rule):  # report the strongest evidence
            prev.rule, prev.reference_idx, prev.order = best, ref_idx, order
    partial = [p for p in dups if not p.example_removed]
    return out, partial
