"""The reports a person reads: pairs.jsonl, summary.json, the printed table, index.html, and
flagged_sources.json (the raw source images of removed examples, for a rebuild to exclude, and the
ids removed from each split, which `build-task --exclude` checks against the split it refills),
plus removed_ids.txt: every removed id, one per line, the plain list decontamination tools read.
Every file is written atomically (`builders.atomic`): a kill leaves the previous report or the new.

index.html shows, per task, the flagged pairs and then the borderline ones (including partial
matches of pair tasks), reference on the left and training image on the right, as inline base64
JPEG thumbnails so the page is one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from builders.atomic import atomic_write_json, atomic_write_text
from builders.imaging import UnreadableImage, decode_bytes
from dedup.apply import SplitOutcome
from dedup.decide import BORDERLINE, DISTINCT, DUPLICATE
from dedup.pairs import UNREADABLE_RULE, PairRecord
from dedup.run import TaskResult

MAX_LISTED = 50  # missing raw images listed by name in the summary (all are counted)


def _hist(values: list[float], lo: float, hi: float, bins: int) -> dict[str, list]:
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return {"edges": [round(float(e), 4) for e in edges], "counts": counts.tolist()}


def _histograms(pairs: list[PairRecord]) -> dict[str, Any]:
    return {
        "cosine": _hist([p.cosine for p in pairs], -1.0, 1.0, 20),
        "phash": _hist([p.scores.phash for p in pairs], 0, 64, 16),
        "ssim_raw": _hist([p.scores.ssim_raw for p in pairs], -1.0, 1.0, 20),
        "ssim_blur": _hist([p.scores.ssim_blur for p in pairs], -1.0, 1.0, 20),
        "ssim_median": _hist([p.scores.ssim_median for p in pairs], -1.0, 1.0, 20),
    }


def task_summary(res: TaskResult, outcomes: dict[str, SplitOutcome]) -> dict[str, Any]:
    splits = {}
    for split, o in outcomes.items():
        splits[split] = {
            **res.examined[split],
            "removed_now": len(o.removed_now),
            "removed_total": o.removed_total,
            "kept": o.kept,
            "rewritten": o.written,
            "removed_by_rule": dict(sorted(Counter(r.rule for r in o.removed_now).items())),
            "removed_idx": [r.idx for r in o.removed_now],
        }
    verdicts = Counter(p.decision.verdict for p in res.pairs)
    return {
        "reference": {"examples": res.reference_examples, "images": res.reference_images},
        "splits": splits,
        "candidates": len(res.pairs),
        "decisions": {v: verdicts.get(v, 0) for v in (DUPLICATE, BORDERLINE, DISTINCT)},
        "partial_pair_matches": len(res.partial),
        "unreadable": res.unreadable,
        "raw_missing": {"count": len(res.raw_missing), "first": res.raw_missing[:MAX_LISTED]},
        "cross_split_shared_images": res.cross_split,
        "histograms": _histograms(res.pairs),
        "seconds": {k: round(v, 3) for k, v in res.seconds.items()},
    }


def table(against: str, results: list[TaskResult], outcomes: dict[str, dict[str, SplitOutcome]]) -> str:
    head = ("task", "split", "examined", "images", "raw", "flagged", "removed total", "kept")
    rows = [head]
    for res in results:
        for split, o in outcomes[res.task].items():
            ex = res.examined[split]
            rows.append((res.task, split, str(ex["examples"]), str(ex["images"]),
                         str(ex["raw_images"]), str(len(o.removed_now)), str(o.removed_total),
                         str(o.kept)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [f"dedup against {against}"]
    for k, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    for res in results:
        notes = []
        if res.unreadable:
            notes.append(f"{len(res.unreadable)} unreadable image(s)")
        if res.raw_missing:
            notes.append(f"{len(res.raw_missing)} raw source image(s) not found")
        if res.cross_split:
            notes.append(f"{len(res.cross_split)} image(s) shared between splits")
        if res.partial:
            notes.append(f"{len(res.partial)} partial pair match(es) kept")
        if notes:
            lines.append(f"{res.task}: " + "; ".join(notes))
    return "\n".join(lines)


def flagged_sources(results: list[TaskResult], outcomes: dict[str, dict[str, SplitOutcome]],
                    ) -> dict[str, Any]:
    """Per task, the source images of every example removed as a duplicate (all runs), and every
    id removed from each split (any rule), which the split's manifest records alike."""
    out: dict[str, Any] = {}
    for res in results:
        examples, images = [], set()
        removed = {}
        for split, o in outcomes[res.task].items():
            removed[split] = sorted(row.idx for row in o.removed_rows)
            for row in o.removed_rows:
                if o.removed_rules.get(row.idx) == UNREADABLE_RULE:
                    continue  # not contamination; a rebuild may use the source image again
                src = row.source_dict
                names = list(src.get("source_images") or [])
                images.update(names)
                examples.append({"split": split, "idx": row.idx, "dataset": src.get("dataset"),
                                 "source_images": names})
        out[res.task] = {"source_images": sorted(images), "examples": examples, "removed": removed}
    return out


def removed_ids(results: list[TaskResult], outcomes: dict[str, dict[str, SplitOutcome]]) -> str:
    """Every id removed from every split (all runs), sorted, one per line."""
    ids = sorted(row.idx for res in results for o in outcomes[res.task].values()
                 for row in o.removed_rows)
    return "".join(f"{i}\n" for i in ids)


def _thumb(data: bytes, px: int) -> str:
    try:
        img = decode_bytes(data)
    except UnreadableImage:  # every decode failure, the pixel cap included
        return ""
    img.thumbnail((px, px))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _closeness(p: PairRecord) -> float:
    s = p.scores
    return max(s.ssim_blur, s.ssim_raw, s.ssim_median, 1.0 - s.phash / 32.0)


def shown_pairs(res: TaskResult, max_pairs: int) -> dict[str, list[PairRecord]]:
    """The pairs index.html shows: those that removed an example, then borderline pairs and
    partial pair matches, closest first; at most `max_pairs` of each."""
    flagged = [p for p in res.pairs if p.example_removed]
    border = sorted([p for p in res.pairs if p.decision.verdict == BORDERLINE] + res.partial,
                    key=lambda p: -_closeness(p))
    return {"Flagged": flagged[:max_pairs], "Borderline": border[:max_pairs]}


def thumbnails(res: TaskResult, max_pairs: int, px: int) -> dict[str, str]:
    """Data URIs of every image index.html will show, taken while the task's images are at hand
    (label -> URI; "" for an image that cannot be read)."""
    out: dict[str, str] = {}
    for group in shown_pairs(res, max_pairs).values():
        for p in group:
            for ref in (p.ref, p.cand):
                if ref.label not in out:
                    try:
                        out[ref.label] = _thumb(res.loaders[ref.label].load(), px)
                    except (KeyError, OSError):
                        out[ref.label] = ""
    return out


def _pair_html(p: PairRecord, thumbs: dict[str, str]) -> str:
    cells = []
    for ref in (p.ref, p.cand):
        src = thumbs.get(ref.label, "")
        img = f'<img src="{src}" alt="">' if src else "<div class=missing>unreadable</div>"
        cells.append(f"<figure>{img}<figcaption>{html.escape(ref.label)}</figcaption></figure>")
    s = p.scores
    info = (f"<b>{html.escape(p.decision.verdict)}</b> {html.escape(', '.join(p.decision.fired))}"
            f"<br>cosine {p.cosine:.3f} · pHash {s.phash} (whole {s.phash_whole}) · "
            f"SSIM raw {s.ssim_raw:.3f} · blurred {s.ssim_blur:.3f} · median {s.ssim_median:.3f} · "
            f"{html.escape(s.align)}"
            + (" · <b>example removed</b>" if p.example_removed else ""))
    return f"<div class=pair>{''.join(cells)}<div class=info>{info}</div></div>"


CSS = """body{font-family:sans-serif;margin:1em}figure{display:inline-block;margin:4px;
vertical-align:top}figcaption{font-size:11px;max-width:240px;word-break:break-all}
.pair{border-bottom:1px solid #ccc;padding:6px}.info{font-size:13px}.missing{width:120px;
height:80px;background:#eee}"""


def index_html(against: str, results: list[TaskResult], max_pairs: int) -> str:
    parts = [f"<!doctype html><meta charset=utf-8><title>dedup against {against}</title>",
             f"<style>{CSS}</style><h1>dedup against {html.escape(against)}</h1>"]
    for res in results:
        groups = shown_pairs(res, max_pairs)
        n_flag = sum(p.example_removed for p in res.pairs)
        n_border = sum(p.decision.verdict == BORDERLINE for p in res.pairs) + len(res.partial)
        parts.append(f"<h2>{html.escape(res.task)}</h2><p>{n_flag} flagged pair(s), {n_border} "
                     f"borderline or partial; showing at most {max_pairs} of each.</p>")
        for title, group in groups.items():
            parts.append(f"<h3>{title}</h3>")
            parts.extend(_pair_html(p, res.thumbs) for p in group)
    return "\n".join(parts) + "\n"


def write_reports(out: Path, against: str, results: list[TaskResult],
                  outcomes: dict[str, dict[str, SplitOutcome]], header: dict[str, Any],
                  max_pairs: int) -> dict[str, Any]:
    """Write every report file into `out`; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "pairs.jsonl", "".join(
        json.dumps(p.row(), sort_keys=True) + "\n" for res in results for p in res.pairs))
    summary = {
        **header,
        "tasks": {res.task: task_summary(res, outcomes[res.task]) for res in results},
        "problems": [f"{res.task}: {p}" for res in results for p in res.problems],
    }
    atomic_write_json(out / "summary.json", summary)
    atomic_write_json(out / "flagged_sources.json", flagged_sources(results, outcomes))
    atomic_write_text(out / "removed_ids.txt", removed_ids(results, outcomes))
    atomic_write_text(out / "index.html", index_html(against, results, max_pairs))
    return summary
