"""Candidate search: reference images are the queries, training images the database.

Three channels, unioned, so no single signal decides what gets confirmed:
- exact: identical file bytes (sha256) or identical decoded pixels (md5), by hash join;
- CLIP: per query the top-k database images by cosine, plus every image at or above a floor,
  by an exact chunked matrix product (our test sets are a few thousand images at most, so exact
  search takes seconds and approximate indexes buy nothing; EVAL_AND_DEDUP_NOTES.md 1.7);
- pHash: every database image within a Hamming radius of the query's whole-image pHash (catches
  what a random or weak CLIP model misses; a popcount over all pairs is cheap at this scale).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from dedup.analyse import Analysed

CHUNK = 8192  # database rows per matrix product: bounds the (queries x chunk) score block
HASH_CHUNK = 2048  # database rows per pHash popcount block (8 bytes per query x row)


def clip_candidates(q: np.ndarray, d: np.ndarray, top_k: int, floor: float) -> dict[tuple[int, int], float]:
    """{(query row, database row): cosine} for the top-k and the above-floor pairs."""
    out: dict[tuple[int, int], float] = {}
    if 0 in q.shape or 0 in d.shape:  # no rows, or no decodable image on one side
        return out
    k = min(top_k, len(d))
    best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    for start in range(0, len(d), CHUNK):
        sims = q @ d[start:start + CHUNK].T
        rows, cols = np.nonzero(sims >= floor)
        for r, c in zip(rows.tolist(), cols.tolist()):
            out[(r, start + c)] = float(sims[r, c])
        # Merge this chunk's top-k into the running top-k.
        kk = min(k, sims.shape[1])
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, np.take_along_axis(sims, part, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, part + start], axis=1)
        keep = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(cand_s, keep, axis=1)
        best_i = np.take_along_axis(cand_i, keep, axis=1)
    for r in range(len(q)):
        for s, c in zip(best_s[r].tolist(), best_i[r].tolist()):
            out[(r, int(c))] = float(s)
    return out


def phash_candidates(q_hash: np.ndarray, d_hash: np.ndarray, radius: int) -> set[tuple[int, int]]:
    """Pairs whose whole-image pHash distance is at most `radius`."""
    out: set[tuple[int, int]] = set()
    if len(q_hash) == 0 or len(d_hash) == 0:
        return out
    for start in range(0, len(d_hash), HASH_CHUNK):
        dist = np.bitwise_count(q_hash[:, None] ^ d_hash[None, start:start + HASH_CHUNK])
        rows, cols = np.nonzero(dist <= radius)
        out.update((int(r), start + int(c)) for r, c in zip(rows.tolist(), cols.tolist()))
    return out


def exact_matches(queries: Analysed, db: Analysed) -> dict[tuple[int, int], str]:
    """{(query row, database row): "exact_bytes" | "exact_pixels"} by hash join."""
    out: dict[tuple[int, int], str] = {}
    for attr, rule in (("sha256", "exact_bytes"), ("pixel_md5", "exact_pixels")):
        index: dict[str, list[int]] = defaultdict(list)
        for j, s in enumerate(db.signals):
            if s.ok and getattr(s, attr):
                index[getattr(s, attr)].append(j)
        for i, s in enumerate(queries.signals):
            if not s.ok:
                continue
            for j in index.get(getattr(s, attr), []):
                out.setdefault((i, j), rule)
    return out


def hashes(a: Analysed) -> np.ndarray:
    """Whole-image pHashes as uint64; unreadable images hash to 0 and are dropped from the
    candidates afterwards."""
    return np.array([s.phash if s.ok else 0 for s in a.signals], dtype=np.uint64)


def candidates(queries: Analysed, db: Analysed, top_k: int, floor: float,
               phash_radius: int) -> tuple[dict[tuple[int, int], float], dict[tuple[int, int], str]]:
    """All candidate pairs with their cosine, and the exact-layer verdicts among them."""
    ok_q = {i for i, s in enumerate(queries.signals) if s.ok}
    ok_d = {j for j, s in enumerate(db.signals) if s.ok}
    exact = exact_matches(queries, db)
    pairs = {p: c for p, c in clip_candidates(queries.emb, db.emb, top_k, floor).items()
             if p[0] in ok_q and p[1] in ok_d}
    extra = set(exact) | phash_candidates(hashes(queries), hashes(db), phash_radius)
    for i, j in extra - pairs.keys():
        if i in ok_q and j in ok_d:  # both decodable, so both have an embedding
            pairs[(i, j)] = float(queries.emb[i] @ db.emb[j])
    return pairs, exact
