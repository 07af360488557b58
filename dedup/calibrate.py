"""`dedup calibrate`: how well the signals separate near-duplicates from hard negatives.

Positives are made from the reference (test) images themselves, one per transform a training copy
may have gone through: resize, JPEG re-encode, ~90% crop, drawn boxes (Localization-style),
drawn REF/A-D rings (correspondence-style), slight colour jitter, and a combination. Hard
negatives are, per reference image, its nearest *other* reference images by CLIP cosine and by
whole-image pHash (distinct test items, so certainly not copies; identical files are skipped).
For each signal the command prints the threshold that keeps every negative out (and the recall
it leaves) and the best-F1 threshold, then, for BOTH confirmation rule sets (`dedup.decide`: the
paper's pHash-AND-SSIM "paper" rule and the stricter "any" rule; the configured one is marked),
the recall of the planted copies, overall and per transform, and the false positives among the
hard negatives. Each pair is judged with its reference's task policy (the paper rule's blurred
view only for `blur_tasks`). With random CLIP weights the cosine numbers are only illustrative;
the pHash and SSIM numbers do not depend on the model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from builders.drawing import draw_boxes, draw_points
from builders.imaging import decode_bytes, encode_image
from builders.io import SplitDamagedError, SplitNotFoundError, read_split, split_dir
from builders.registry import load_registry
from dedup.analyse import analyse
from dedup.catalog import REFERENCE_SPLIT, DedupInputError, ImageItem, ImageRef, select_tasks
from dedup.compare import PairScores, compare
from dedup.config import RULE_SET_NAMES, DedupConfig
from dedup.decide import DUPLICATE, decide
from dedup.embed import make_embedder

NEG_PER_IMAGE = 5  # nearest other reference images per reference image, per channel
MAX_EXAMPLES = 20  # missed positives / flagged and closest negatives listed in the JSON


def _resize(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    return img.resize((max(8, round(w * rng.uniform(0.4, 0.8))), max(8, round(h * rng.uniform(0.4, 0.8)))),
                      Image.BICUBIC)


def _jpeg(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    data = encode_image(img, "jpeg", int(rng.integers(40, 80)))
    return decode_bytes(data)


def _crop(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    f = rng.uniform(0.88, 0.92)
    cw, ch = round(w * f), round(h * f)
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return img.crop((x, y, x + cw, y + ch))


def _boxes(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    boxes = {}
    for label in "AB":
        x1, y1 = rng.uniform(0.05, 0.5) * w, rng.uniform(0.05, 0.5) * h
        boxes[label] = [x1, y1, x1 + rng.uniform(0.2, 0.45) * w, y1 + rng.uniform(0.2, 0.45) * h]
    return draw_boxes(img, boxes)


def _points(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    labels = ("REF", "A", "B", "C", "D")
    return draw_points(img, {k: (rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h) for k in labels})


def _jitter(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    for enh in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        img = enh(img).enhance(rng.uniform(0.9, 1.1))
    return img


def _combo(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return _jpeg(_boxes(_resize(_crop(img, rng), rng), rng), rng)


TRANSFORMS: dict[str, Callable[[Image.Image, np.random.Generator], Image.Image]] = {
    "resize": _resize, "jpeg": _jpeg, "crop90": _crop, "boxes": _boxes, "points": _points,
    "jitter": _jitter, "combo": _combo,
}

# signal -> (value of a scored pair, True when larger means "more duplicate")
SIGNALS: dict[str, tuple[Callable[[PairScores, float], float], bool]] = {
    "cosine": (lambda s, c: c, True),
    "phash": (lambda s, c: s.phash, False),
    "phash_whole": (lambda s, c: s.phash_whole, False),
    "ssim_raw": (lambda s, c: s.ssim_raw, True),
    "ssim_blur": (lambda s, c: s.ssim_blur, True),
    "ssim_median": (lambda s, c: s.ssim_median, True),
}


def separation(pos: np.ndarray, neg: np.ndarray, higher: bool) -> dict[str, float]:
    """The threshold that keeps every negative out (with the recall it leaves) and the best-F1
    threshold (with its precision and recall). Thresholds are inclusive: score >= t (or <= t)."""
    sign = 1.0 if higher else -1.0
    p, n = sign * pos, sign * neg
    cuts = np.unique(np.concatenate([p, n]))
    best = (-1.0, 0.0, 0.0, 0.0)
    for t in cuts:
        tp, fp = float((p >= t).sum()), float((n >= t).sum())
        prec = tp / (tp + fp) if tp + fp else 1.0
        rec = tp / len(p) if len(p) else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        if f1 > best[0]:
            best = (f1, t, prec, rec)
    above = p[p > n.max()] if len(n) else p
    safe_t = float(above.min()) if len(above) else float("nan")
    return {
        "pos_min" if higher else "pos_max": float(sign * p.min()),
        "neg_max" if higher else "neg_min": float(sign * n.max()) if len(n) else float("nan"),
        "threshold_precision_1": sign * safe_t,
        "recall_at_precision_1": float(len(above) / len(p)) if len(p) else 0.0,
        "threshold_best_f1": float(sign * best[1]), "best_f1": best[0],
        "precision_at_best_f1": best[2], "recall_at_best_f1": best[3],
    }


def _reference_records(built: Path, specs) -> list[tuple[str, object]]:  # (task, record)
    out = []
    for spec in specs:
        d = split_dir(built, spec.name, REFERENCE_SPLIT)
        try:
            out.extend((spec.name, r) for r in read_split(d))
        except SplitNotFoundError:
            raise DedupInputError(f"{spec.name}: no built test split at {d} "
                                  f"(build-task {spec.name} --split test)") from None
        except SplitDamagedError as exc:
            raise DedupInputError(f"{spec.name}: {exc}") from exc
    return out


def scored_pairs(args: argparse.Namespace, cfg: DedupConfig, cache_root: Path):
    """(positives, negatives, number of reference images): positives are (task, transform, label,
    scores, cosine), negatives (task, label, scores, cosine); the task is the reference's."""
    specs = select_tasks(load_registry(), args.against, args.built, args.tasks)
    refs: list[ImageItem] = []
    ref_task: list[str] = []
    seen: set[bytes] = set()
    for task, rec in _reference_records(args.built, specs):
        for k, data in enumerate(rec.images):
            if data not in seen:  # one test image used by two items is one reference
                seen.add(data)
                refs.append(ImageItem(ImageRef(REFERENCE_SPLIT, rec.idx, k + 1), (lambda b=data: b)))
                ref_task.append(task)
    if args.limit:
        refs = refs[: args.limit]
    rng = np.random.default_rng(cfg.seed)
    per = args.per_image or len(TRANSFORMS)
    names = list(TRANSFORMS)
    pos_items, pos_src, pos_kind = [], [], []
    for i, it in enumerate(refs):
        img = decode_bytes(it.load(), f"{it.ref.idx} image {it.ref.slot}")  # the pixel cap holds
        for k in range(per):
            kind = names[k % len(names)]
            data = encode_image(TRANSFORMS[kind](img, rng), "jpeg", 90)
            pos_items.append(ImageItem(ImageRef("calibration", f"{it.ref.idx}:{kind}", it.ref.slot),
                                       (lambda b=data: b)))
            pos_src.append(i)
            pos_kind.append(kind)
    embedder, cache = make_embedder(cfg.model, cfg.pretrained, cfg.device, cfg.seed, cache_root)
    with ThreadPoolExecutor(cfg.workers) as pool:
        qa = analyse(refs, embedder, cache, pool, cfg.batch_size, cfg.view_size, cfg.blur_sigma,
                     "references", not args.no_progress)
        pa = analyse(pos_items, embedder, cache, pool, cfg.batch_size, cfg.view_size,
                     cfg.blur_sigma, "positives", not args.no_progress)
    cache.flush()

    def score(a, b, cos):
        return compare(a, b, cfg), cos

    positives = [(ref_task[i], pos_kind[j], qa.refs[i].label,
                  *score(qa.signals[i], pa.signals[j], float(qa.emb[i] @ pa.emb[j])))
                 for j, i in enumerate(pos_src) if qa.signals[i].ok and pa.signals[j].ok]
    neg_pairs: set[tuple[int, int]] = set()
    ok = [i for i, s in enumerate(qa.signals) if s.ok]
    sims = qa.emb @ qa.emb.T
    hashes = np.array([qa.signals[i].phash if qa.signals[i].ok else 0 for i in range(len(qa))],
                      dtype=np.uint64)
    ham = np.bitwise_count(hashes[:, None] ^ hashes[None, :]).astype(np.float64)
    for i in ok:
        for order in (np.argsort(-sims[i], kind="stable"), np.argsort(ham[i], kind="stable")):
            picked = [j for j in order if j != i and j in set(ok)
                      and qa.signals[j].pixel_md5 != qa.signals[i].pixel_md5][:NEG_PER_IMAGE]
            neg_pairs.update((min(i, j), max(i, j)) for j in picked)
    negatives = [(ref_task[i], f"{qa.refs[i].label} vs {qa.refs[j].label}",
                  *score(qa.signals[i], qa.signals[j], float(sims[i, j]))) for i, j in sorted(neg_pairs)]
    return positives, negatives, len(refs)


def run_calibration(args: argparse.Namespace, cfg: DedupConfig, cache_root: Path) -> int:
    positives, negatives, n_refs = scored_pairs(args, cfg, cache_root)
    report = summarize(positives, negatives, cfg)
    report["references"] = n_refs
    report["model"] = {"model": cfg.model, "pretrained": cfg.pretrained,
                       "note": "random weights: cosine numbers are illustrative only"
                       if cfg.pretrained is None else ""}
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def _row(label: str, s: PairScores, c: float) -> dict:
    return {"pair": label, "cosine": round(c, 4), "phash": s.phash, "ssim_raw": round(s.ssim_raw, 4),
            "ssim_blur": round(s.ssim_blur, 4), "ssim_median": round(s.ssim_median, 4),
            "align": s.align}


def summarize(positives: list[tuple[str, str, str, PairScores, float]],
              negatives: list[tuple[str, str, PairScores, float]], cfg: DedupConfig) -> dict:
    """Per-signal separation, then per rule set its precision and recall, and the positives it
    misses and the negatives it flags (or nearly flags), for a person to look at."""
    out: dict = {"positives": len(positives), "negatives": len(negatives), "signals": {},
                 "configured_rule": cfg.rule, "blur_tasks": list(cfg.blur_tasks)}
    for name, (get, higher) in SIGNALS.items():
        pos = np.array([get(s, c) for *_, s, c in positives], dtype=np.float64)
        neg = np.array([get(s, c) for *_, s, c in negatives], dtype=np.float64)
        if len(pos):
            out["signals"][name] = separation(pos, neg, higher)
    out["rules"] = {rule: _rule_report(rule, positives, negatives, cfg) for rule in RULE_SET_NAMES}
    return out


def _rule_report(rule: str, positives, negatives, cfg: DedupConfig) -> dict:
    def dup(task, s, c):
        policy = dataclasses.replace(cfg.policy(task), rule=rule)
        return decide(s, c, None, policy, cfg.borderline).verdict == DUPLICATE

    hit = [dup(t, s, c) for t, _, _, s, c in positives]
    flagged = [dup(t, s, c) for t, _, s, c in negatives]
    tp, fp = sum(hit), sum(flagged)
    thresholds = cfg.public()["paper_rule" if rule == "paper" else "rules"]
    return {
        "config": thresholds,
        "true_positives": tp, "false_negatives": len(positives) - tp, "false_positives": fp,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / len(positives) if positives else 0.0,
        "recall_by_transform": {
            k: float(np.mean([h for h, (_, kk, *_) in zip(hit, positives) if kk == k]))
            for k in dict.fromkeys(kk for _, kk, *_ in positives)
        },
        "missed_positives": [{"transform": k, **_row(lab, s, c)}
                             for h, (_, k, lab, s, c) in zip(hit, positives) if not h][:MAX_EXAMPLES],
        "flagged_negatives": [_row(lab, s, c) for f, (_, lab, s, c) in zip(flagged, negatives)
                              if f][:MAX_EXAMPLES],
        "closest_negatives": [_row(lab, s, c) for _, lab, s, c in sorted(
            negatives, key=lambda n: -max(n[2].ssim_blur, n[2].ssim_median))][:MAX_EXAMPLES],
    }


def format_report(r: dict) -> str:
    head = (f"calibration: {r.get('references', '?')} reference images, {r['positives']} "
            f"positives, {r['negatives']} hard negatives")
    cols = (f"{'signal':12s} {'pos worst':>9s} {'neg best':>9s} {'t(prec=1)':>9s} {'recall':>7s} "
            f"{'t(bestF1)':>9s} {'P':>6s} {'R':>6s}")
    lines = [head, cols]
    for name, s in r["signals"].items():
        worst = s.get("pos_min", s.get("pos_max"))
        best_neg = s.get("neg_max", s.get("neg_min"))
        lines.append(f"{name:12s} {worst:9.3f} {best_neg:9.3f} {s['threshold_precision_1']:9.3f} "
                     f"{s['recall_at_precision_1']:7.3f} {s['threshold_best_f1']:9.3f} "
                     f"{s['precision_at_best_f1']:6.3f} {s['recall_at_best_f1']:6.3f}")
    blurred = ", ".join(r["blur_tasks"]) or "no task"
    for rule, ru in r["rules"].items():
        mark = " (configured)" if rule == r["configured_rule"] else ""
        view = f"; blurred view for {blurred}" if rule == "paper" else ""
        lines.append(f"rule {rule}{mark} {ru['config']}: precision {ru['precision']:.3f}, recall "
                     f"{ru['recall']:.3f} (TP {ru['true_positives']}, FP {ru['false_positives']}, "
                     f"FN {ru['false_negatives']}){view}")
        lines.append("  recall by transform: " + ", ".join(
            f"{k} {v:.3f}" for k, v in ru["recall_by_transform"].items()))
    if r.get("model", {}).get("note"):
        lines.append(f"note: {r['model']['note']}; pHash and SSIM numbers do not depend on the model")
    return "\n".join(lines)
