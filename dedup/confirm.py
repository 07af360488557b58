"""Scoring many candidate pairs: `compare` in this process, or in worker processes when it pays.

`compare` is small numpy, OpenCV and scikit-image calls on 64 px views (~4 ms a pair on one
core), so it holds the GIL most of the time and threads do not help. From
`confirm_pool_min_pairs` pairs on, the pairs are cut into chunks scored by up to
`confirm_processes` worker processes (never more than the CPUs). Workers are spawned, not forked:
the parent holds torch's thread pools, which a fork would copy in whatever state they are in. A
spawned worker re-imports the program's main module, a few seconds once per run, which is why
small runs stay in-process. Each chunk carries just the signals its pairs need, and results come
back in input order, so the output never depends on the pool.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import cv2

from dedup.compare import PairScores, compare
from dedup.config import DedupConfig
from dedup.signals import ImageSignals

CHUNKS_PER_WORKER = 4  # a few chunks per worker keeps them busy when chunks differ in cost


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would oversubscribe


def _score_chunk(cfg: DedupConfig, refs: dict[int, ImageSignals], cands: dict[int, ImageSignals],
                 pairs: list[tuple[int, int]]) -> list[PairScores]:
    return [compare(refs[i], cands[j], cfg) for i, j in pairs]


class Confirmer:
    """`score(pairs, ref_signals, cand_signals)`; the process pool starts on first need and is
    shut down by `close` (use `contextlib.closing`)."""

    def __init__(self, cfg: DedupConfig) -> None:
        self.cfg = cfg
        self._pool: ProcessPoolExecutor | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def score(self, pairs: list[tuple[int, int]], refs: list[ImageSignals],
              cands: list[ImageSignals]) -> list[PairScores]:
        workers = min(self.cfg.confirm_processes, os.cpu_count() or 1)
        if workers <= 1 or len(pairs) < self.cfg.confirm_pool_min_pairs:
            return [compare(refs[i], cands[j], self.cfg) for i, j in pairs]
        if self._pool is None:
            self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker)
        size = max(1, -(-len(pairs) // (workers * CHUNKS_PER_WORKER)))
        futures = []
        for start in range(0, len(pairs), size):
            chunk = pairs[start:start + size]
            futures.append(self._pool.submit(
                _score_chunk, self.cfg, {i: refs[i] for i, _ in chunk},
                {j: cands[j] for _, j in chunk}, chunk))
        return [s for f in futures for s in f.result()]
