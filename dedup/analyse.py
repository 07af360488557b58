"""Decode every image once and compute all of its signals: hashes, pHash, views, CLIP embedding.

Decoding, hashing and CLIP preprocessing run on worker threads (PIL and OpenCV release the GIL)
one batch ahead of the CLIP forward pass, so the embedding step is the only serial part. Images
whose content hash is in the embedding cache skip preprocessing and the forward pass; when every
image is cached the model is never even built. An image that cannot be read or decoded gets
`error` set and a zero embedding: callers report it, nothing treats it as "not a duplicate".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from dedup.catalog import ImageItem, ImageRef
from dedup.embed import EmbeddingCache, LazyEmbedder
from dedup.signals import ImageSignals, image_signals


@dataclass
class Analysed:
    refs: list[ImageRef]
    signals: list[ImageSignals]
    emb: np.ndarray  # (n, d) float32, L2-normalised; zero rows for unreadable images

    def __len__(self) -> int:
        return len(self.refs)


def _prepare(item: ImageItem, cache: EmbeddingCache, embedder: LazyEmbedder, view_size: int,
             sigma: float) -> tuple[ImageSignals, torch.Tensor | None]:
    try:
        data = item.load()
    except OSError as exc:
        return ImageSignals(sha256="", error=f"{type(exc).__name__}: {exc}"), None
    sig, img = image_signals(data, view_size, sigma)
    if img is None or sig.sha256 in cache:
        return sig, None
    return sig, embedder.model.prepare(img)


def analyse(items: Sequence[ImageItem], embedder: LazyEmbedder, cache: EmbeddingCache,
            pool: ThreadPoolExecutor, batch_size: int, view_size: int, sigma: float,
            desc: str = "images", progress: bool = True) -> Analysed:
    signals: list[ImageSignals] = []
    chunks = [items[i:i + batch_size] for i in range(0, len(items), batch_size)]
    pending: deque[list[Future]] = deque()

    def submit(chunk):
        return [pool.submit(_prepare, it, cache, embedder, view_size, sigma) for it in chunk]

    bar = tqdm(total=len(items), desc=desc, unit="img", leave=False, disable=not progress)
    with bar:
        for i in range(min(2, len(chunks))):
            pending.append(submit(chunks[i]))
        nxt = len(pending)
        while pending:
            results = [f.result() for f in pending.popleft()]
            if nxt < len(chunks):  # keep one batch being prepared while this one is encoded
                pending.append(submit(chunks[nxt]))
                nxt += 1
            todo = [(s.sha256, t) for s, t in results if t is not None]
            if todo:
                keys = list(dict.fromkeys(k for k, _ in todo))
                firsts = {k: t for k, t in reversed(todo)}
                cache.put_many(keys, embedder.model.encode([firsts[k] for k in keys]))
            signals.extend(s for s, _ in results)
            bar.update(len(results))
    dim = next((len(cache.get(s.sha256)) for s in signals if s.ok), 0)  # 0: nothing decodable
    emb = np.zeros((len(signals), dim), dtype=np.float32)
    for i, s in enumerate(signals):
        if s.ok:
            emb[i] = cache.get(s.sha256)
    return Analysed([it.ref for it in items], signals, emb)
