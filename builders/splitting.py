"""Deterministic assignment of source items to our splits, so no source image is in two splits.

Two schemes, both fixed by the seed alone (never by `--n`), so building train and val separately,
in any order or size, can never put one source item in both:
- `assign_split`: hash an item's stable key into a split by the registry's fractions (large pools
  such as COCO or ArtBench where exact counts do not matter);
- `partition`: shuffle a small list (HPatches sequences, FunKPoint images) and cut it at exact
  largest-remainder counts (80/10/10 of 57 sequences is 46/6/5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def stable_int(*parts: object) -> int:
    """A 64-bit integer from the parts' text, identical across runs and machines (unlike hash())."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def hash_unit(seed: int, key: object) -> float:
    """A number in [0, 1) fixed by (seed, key)."""
    return stable_int("split", seed, key) / 2**64


def _check_fractions(fractions: dict[str, float]) -> None:
    total = sum(fractions.values())
    if not fractions or abs(total - 1.0) > 1e-6 or min(fractions.values()) < 0:
        raise ValueError(f"split_fractions {fractions} must be non-negative and sum to 1")


def assign_split(key: object, fractions: dict[str, float], seed: int) -> str:
    """The split that owns `key` (fractions in registry order)."""
    _check_fractions(fractions)
    u = hash_unit(seed, key)
    acc = 0.0
    names = list(fractions)
    for name in names:
        acc += fractions[name]
        if u < acc:
            return name
    return names[-1]


def split_counts(n: int, fractions: dict[str, float]) -> dict[str, int]:
    """Largest-remainder rounding of n * fraction, summing exactly to n."""
    _check_fractions(fractions)
    raw = {k: n * f for k, f in fractions.items()}
    counts = {k: int(np.floor(v)) for k, v in raw.items()}
    rest = n - sum(counts.values())
    order = sorted(fractions, key=lambda k: (-(raw[k] - counts[k]), list(fractions).index(k)))
    for k in order[:rest]:
        counts[k] += 1
    return counts


def partition(items: Sequence[T], fractions: dict[str, float], rng: np.random.Generator) -> dict[str, list[T]]:
    """Shuffle `items` with `rng` and cut them into splits of exact largest-remainder sizes."""
    order = rng.permutation(len(items))
    counts = split_counts(len(items), fractions)
    out: dict[str, list[T]] = {}
    start = 0
    for name, c in counts.items():
        out[name] = [items[i] for i in order[start : start + c]]
        start += c
    return out
