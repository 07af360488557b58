"""One task's de-duplication, end to end in memory: analyse, search, confirm, decide.

Writing (the filtered splits) and reporting are separate steps (`dedup.apply`, `dedup.report`)
that take a `TaskResult`, so this module never touches files except through reading splits.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from dedup.analyse import Analysed, LazyEmbedder, analyse
from dedup.catalog import REFERENCE_SPLIT, ImageItem, TaskData, database, rendered_items
from dedup.config import DedupConfig
from dedup.confirm import Confirmer
from dedup.decide import decide
from dedup.embed import EmbeddingCache
from dedup.pairs import UNREADABLE_RULE, PairRecord, Removal, removals
from dedup.search import candidates


@dataclass
class TaskResult:
    task: str
    reference_examples: int
    reference_images: int
    examined: dict[str, dict[str, int]]           # split -> examples, images, raw_images
    pairs: list[PairRecord]
    removals: dict[tuple[str, str], Removal]
    partial: list[PairRecord]                     # pair tasks: one image matched, kept
    unreadable: list[dict]
    raw_missing: list[dict]
    cross_split: list[dict]
    loaders: dict[str, ImageItem] = field(default_factory=dict)  # label -> image (bytes held)
    thumbs: dict[str, str] = field(default_factory=dict)  # label -> data URI, for index.html
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        """What makes the result untrustworthy: unverifiable references or examples, leaks."""
        out = [f"unreadable {u['side']} image {u['image']}" for u in self.unreadable
               if u["side"] == "reference" or u.get("action") == "kept"]
        out += [f"image shared by {c['a']} and {c['b']}" for c in self.cross_split]
        return out


def _unreadable(a: Analysed, side: str) -> list[dict]:
    return [{"side": side, "image": r.label, "kind": r.kind, "error": s.error}
            for r, s in zip(a.refs, a.signals) if not s.ok]


def _cross_split(da: Analysed) -> list[dict]:
    """Rendered images with equal content (bytes or pixels) in two different splits."""
    seen: dict[str, tuple[str, str]] = {}
    out, reported = [], set()
    for ref, sig in zip(da.refs, da.signals):
        if ref.kind != "rendered" or not sig.ok:
            continue
        for key in (sig.sha256, sig.pixel_md5):
            first = seen.setdefault(key, (ref.split, ref.label))
            pair = (first[1], ref.label)
            if first[0] != ref.split and pair not in reported:
                reported.add(pair)
                out.append({"a": first[1], "b": ref.label,
                            "by": "sha256" if key == sig.sha256 else "pixels"})
    return out


def dedup_task(task: TaskData, cfg: DedupConfig, source_root: Path | None, embedder: LazyEmbedder,
               cache: EmbeddingCache, pool: ThreadPoolExecutor, confirmer: Confirmer,
               progress: bool = True) -> TaskResult:
    name = task.spec.name
    t0 = time.perf_counter()
    ref_items = rendered_items(task.reference, REFERENCE_SPLIT)
    db = database(task, cfg.raw_tasks, source_root)
    qa = analyse(ref_items, embedder, cache, pool, cfg.batch_size, cfg.view_size, cfg.blur_sigma,
                 desc=f"{name}/test", progress=progress)
    da = analyse(db.items, embedder, cache, pool, cfg.batch_size, cfg.view_size, cfg.blur_sigma,
                 desc=f"{name}/train+val", progress=progress)
    t1 = time.perf_counter()
    # Random weights: cosine means nothing, so it neither widens the candidate set beyond the
    # top-k (a floor would admit every pair) nor marks pairs borderline.
    random_weights = cfg.pretrained is None
    floor = float("inf") if random_weights else cfg.cosine_floor
    border = (dataclasses.replace(cfg.borderline, cosine_min=float("inf")) if random_weights
              else cfg.borderline)
    policy = cfg.policy(name)
    cands, exact = candidates(qa, da, cfg.top_k, floor, cfg.phash_candidate_max)
    keys = sorted(cands, key=lambda p: (qa.refs[p[0]].label, da.refs[p[1]].label))
    t2 = time.perf_counter()
    scored = confirmer.score(keys, qa.signals, da.signals)
    pairs = [PairRecord(name, qa.refs[i], da.refs[j], cands[(i, j)], s,
                        decide(s, cands[(i, j)], exact.get((i, j)), policy, border))
             for (i, j), s in zip(keys, scored)]
    t3 = time.perf_counter()
    removed, partial = removals(pairs, name in cfg.pair_tasks,
                                {r.idx: len(r.images) for r in task.reference})
    unreadable = _unreadable(qa, "reference")
    for ref, sig in zip(da.refs, da.signals):
        if sig.ok:
            continue
        # A broken raw file leaves the rendered image to compare; a broken rendered image leaves
        # an example nobody can verify (or train on): removed or kept as configured, reported.
        action = ("reported" if ref.kind == "raw"
                  else "removed" if cfg.unreadable_train == "remove" else "kept")
        unreadable.append({"side": "training", "image": ref.label, "kind": ref.kind,
                           "error": sig.error, "action": action})
        if action == "removed":
            removed.setdefault((ref.split, ref.idx), Removal(
                ref.split, ref.idx, UNREADABLE_RULE, matches=[ref.label]))
    examined = {}
    for split, records in task.splits.items():
        rows = [r for r in da.refs if r.split == split]
        examined[split] = {"examples": len(records),
                           "images": sum(r.kind == "rendered" for r in rows),
                           "raw_images": sum(r.kind == "raw" for r in rows)}
    loaders = {it.ref.label: it for it in (*ref_items, *db.items)}
    return TaskResult(
        task=name, reference_examples=len(task.reference), reference_images=len(ref_items),
        examined=examined, pairs=pairs, removals=removed, partial=partial,
        unreadable=unreadable, raw_missing=db.raw_missing, cross_split=_cross_split(da),
        loaders=loaders,
        seconds={"analyse": t1 - t0, "search": t2 - t1, "confirm": t3 - t2},
    )
