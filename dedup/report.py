"""The reports a person reads: pairs.jsonl, summary.json, the printed table, index.html, and
flagged_sources.json (the raw source images of removed examples, for a rebuild to exclude, and the
ids removed from each split, which `build-task --exclude` checks against the split it refills),
plus removed_ids.txt: every removed id, one per line, the plain list decontamination tools read.
Every file is written atomically (`builders.atomic`): a kill leaves the previous report or the new.

index.html shows the counts, the thresholds in force (from the run's config), and per task the
flagged pairs beside the closest unflagged ones (borderline pairs and partial matches of pair
tasks first, then the highest-scoring distinct pairs), test image on the left and training image
on the right, each with its scores and the rule that fired or the thresholds it missed. Images
are inline base64 JPEG thumbnails, so the page is one self-contained file.
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


TOP_UNFLAGGED = 12  # index.html: the closest pairs that removed nothing, per task


def shown_pairs(res: TaskResult, max_pairs: int) -> dict[str, list[PairRecord]]:
    """The pairs index.html shows: those that removed an example, and the closest ones that did
    not (borderline pairs and partial pair matches first, then the highest-scoring distinct
    pairs, so the page shows what almost fired even when nothing did)."""
    flagged = [p for p in res.pairs if p.example_removed]
    rest = [p for p in res.pairs if not p.example_removed]
    near = [p for p in rest if p.decision.verdict == BORDERLINE] + res.partial
    others = sorted((p for p in rest if p.decision.verdict != BORDERLINE
                     and not any(p is q for q in res.partial)), key=lambda p: -_closeness(p))
    near.sort(key=lambda p: -_closeness(p))
    unflagged = near[:max_pairs] + others[:max(0, min(max_pairs, TOP_UNFLAGGED) - len(near))]
    return {"Flagged": flagged[:max_pairs], "Closest unflagged": unflagged}


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


# --- index.html ---------------------------------------------------------------------------------


def rules_in_force(config: dict[str, Any], task: str | None = None) -> tuple[str, dict[str, Any]]:
    """(name, thresholds) of the confirmation rule set the run used, from the summary's config:
    the `rule` it names when the config has several sets (the paper's set confirms on blurred
    views only for its `blur_tasks`: for another `task` its blurred thresholds are left out),
    else its one `rules` table."""
    name = config.get("rule")
    if name and isinstance(config.get(f"{name}_rule"), dict):
        thresholds = dict(config[f"{name}_rule"])
        if task is not None and "blur_tasks" in config and task not in config["blur_tasks"]:
            thresholds = {k: v for k, v in thresholds.items() if "blur" not in k}
        return name, thresholds
    return name or "any", config.get("rules", {})


def _score_of(threshold: str) -> tuple[str, str]:
    """(PairScores field, comparison) a threshold key applies to, read from its name:
    `*_max` bounds the pHash distance from above; `*_min` bounds an SSIM from below (median,
    blurred, or raw when the name says neither)."""
    if threshold.endswith("_max"):
        return "phash", "<="
    if "median" in threshold:
        return "ssim_median", ">="
    return ("ssim_blur" if "blur" in threshold else "ssim_raw"), ">="


def threshold_checks(p: PairRecord, thresholds: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Per threshold of the rules in force: (threshold, "score value vs threshold", met)."""
    out = []
    for key, limit in thresholds.items():
        if not isinstance(limit, (int, float)):
            continue
        field, op = _score_of(key)
        value = getattr(p.scores, field)
        met = value <= limit if op == "<=" else value >= limit
        shown = f"{value}" if isinstance(value, int) else f"{value:.3f}"
        out.append((key, f"{field} {shown} {op} {limit}", met))
    return out


def _why(p: PairRecord, thresholds: dict[str, Any]) -> str:
    d = p.decision
    if p.example_removed:
        head = f"<b class=dup>removed</b> by rule <code>{html.escape(d.rule)}</code>"
        if len(d.fired) > 1:
            head += " (also " + ", ".join(f"<code>{html.escape(r)}</code>"
                                        for r in d.fired[1:]) + ")"
    elif d.verdict == DUPLICATE:
        head = (f"<b class=near>duplicate image, example kept</b>: only part of a pair matched "
                f"(rule <code>{html.escape(d.rule)}</code>)")
    elif d.verdict == BORDERLINE:
        head = ("<b class=near>borderline</b>: within the review margins of "
                + ", ".join(f"<code>{html.escape(r.removeprefix('near_'))}</code>"
                            for r in d.fired))
    else:
        head = "<b class=ok>no rule fired</b>, none within the review margins"
    checks = "".join(
        f"<li class={'met' if met else 'unmet'}>{'&#10003;' if met else '&#10007;'} "
        f"<code>{html.escape(key)}</code>: {html.escape(text)}</li>"
        for key, text, met in threshold_checks(p, thresholds))
    return f"<p>{head}</p><ul class=checks>{checks}</ul>"


def _pair_html(p: PairRecord, thumbs: dict[str, str], thresholds: dict[str, Any]) -> str:
    cells = []
    for role, ref in (("test", p.ref), ("train/val", p.cand)):
        src = thumbs.get(ref.label, "")
        img = f'<img src="{src}" alt="">' if src else "<div class=missing>unreadable</div>"
        cells.append(f"<figure>{img}<figcaption><b>{role}</b> {html.escape(ref.label)}"
                     f"</figcaption></figure>")
    s = p.scores
    scores = (f"cosine {p.cosine:.3f} · pHash {s.phash} (whole image {s.phash_whole}) · SSIM raw "
              f"{s.ssim_raw:.3f} · blurred {s.ssim_blur:.3f} · median {s.ssim_median:.3f} · "
              f"aligned {html.escape(s.align)}")
    return (f"<div class=pair><div class=images>{''.join(cells)}</div><div class=info>"
            f"{_why(p, thresholds)}<p class=scores>{scores}</p></div></div>")


def _table_html(head: list[str], rows: list[list[Any]], numeric_from: int = 1) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td class={'num' if i >= numeric_from else 'txt'}>"
                         f"{html.escape(str(v))}</td>" for i, v in enumerate(r)) + "</tr>"
        for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _thresholds_html(config: dict[str, Any]) -> str:
    name, thresholds = rules_in_force(config)
    rows = [[k, v] for k, v in thresholds.items()]
    border = config.get("borderline", {})
    retrieval = [[k, config[k]] for k in ("model", "pretrained", "top_k", "cosine_floor",
                                          "phash_candidate_max", "view_size", "blur_sigma")
                 if k in config]
    random_weights = "pretrained" in config and config["pretrained"] is None
    retrieval = [[k, "none (random weights)" if k == "pretrained" and random_weights else v]
                 for k, v in retrieval]
    return (
        f"<div class=cols><div><h3>Confirmation: rule set <code>{html.escape(str(name))}</code>"
        f"</h3>{_table_html(['threshold', 'value'], rows)}<p class=note>"
        + (f"Blurred views confirm only for {html.escape(', '.join(config['blur_tasks']))}. "
           if config.get("blur_tasks") and name != "any" else "")
        + "<code>[dedup] rule</code> in tasks.toml chooses the set. Identical bytes or pixels "
        f"always count (<code>exact_bytes</code>, <code>exact_pixels</code>). pHash is a distance "
        f"in bits (64-bit hash; lower is closer); SSIM is 1 for identical views. Under each "
        f"pair, &#10003; marks a threshold the pair meets; a rule fires only when all of its "
        f"thresholds are met.</p></div>"
        f"<div><h3>Shown for review (borderline)</h3>"
        f"{_table_html(['margin', 'value'], [[k, v] for k, v in border.items()])}"
        f"<p class=note>A pair this close to a rule is listed, not removed.</p></div>"
        f"<div><h3>Retrieval</h3>{_table_html(['setting', 'value'], retrieval)}"
        f"<p class=note>CLIP nearest neighbours and pHash retrieve candidates; only the rules "
        f"above decide."
        + (" With random weights the cosine shown beside each pair means nothing." if
           random_weights else "") + "</p></div></div>")


def _counts_html(tasks: dict[str, Any]) -> str:
    head = ["task", "split", "examples", "images", "flagged now", "removed (all runs)", "kept"]
    rows = []
    for task, t in tasks.items():
        for split, o in t["splits"].items():
            rows.append([task, split, o.get("examples", ""), o.get("images", ""),
                         o["removed_now"], o["removed_total"], o["kept"]])
    return _table_html(head, rows, numeric_from=2)


def _cards_html(tasks: dict[str, Any]) -> str:
    def total(f: Any) -> int:
        return sum(f(t) for t in tasks.values())

    cards = [
        ("test images", total(lambda t: t["reference"]["images"])),
        ("train/val examples", total(lambda t: sum(o.get("examples", 0)
                                                   for o in t["splits"].values()))),
        ("pairs scored", total(lambda t: t["candidates"])),
        ("examples flagged", total(lambda t: sum(o["removed_now"] for o in t["splits"].values()))),
        ("borderline pairs", total(lambda t: t["decisions"].get(BORDERLINE, 0))),
        ("examples kept", total(lambda t: sum(o["kept"] for o in t["splits"].values()))),
    ]
    return "<div class=cards>" + "".join(
        f"<div class=card><div class=big>{v}</div>{html.escape(k)}</div>" for k, v in cards
    ) + "</div>"


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;
background:#f5f6f8}main{max-width:1320px;margin:0 auto;padding:20px 28px}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:2px solid
#d9dde5;padding-bottom:4px}h3{font-size:15px;margin:10px 0 6px}.lead{color:#4a5263;margin:0 0 14px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #d9dde5;
border-radius:8px;padding:10px 16px;min-width:130px;color:#4a5263}.big{font-size:24px;
font-weight:600;color:#1d2330}.cols{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
.cols>div{flex:1;min-width:300px}table{border-collapse:collapse;background:#fff;
border:1px solid #d9dde5;margin:4px 0}th,td{padding:4px 10px;border-bottom:1px solid #eceef2;
text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#eef0f4}
.note{color:#5b6475;font-size:12.5px;margin:4px 0}code{background:#eef0f4;border-radius:3px;
padding:0 3px}.side{display:grid;grid-template-columns:1fr 1fr;gap:18px}.side>section{min-width:0}
.pair{background:#fff;border:1px solid #d9dde5;border-radius:8px;padding:10px;margin:0 0 10px}
.images{display:flex;gap:8px}figure{margin:0;flex:1;min-width:0}figure img{max-width:100%;
max-height:160px;display:block;border:1px solid #d9dde5}figcaption{font-size:11.5px;color:#4a5263;
word-break:break-all}.info p{margin:6px 0 2px}.scores{font-size:12px;color:#4a5263}
.checks{list-style:none;padding:0;margin:2px 0;font-size:12px;columns:2}.met{color:#a3261a}
.unmet{color:#5b6475}.dup{color:#a3261a}.near{color:#9a6700}.ok{color:#1f7a3a}
.missing{width:120px;height:80px;background:#eee;display:flex;align-items:center;
justify-content:center;color:#888}.empty{color:#5b6475;font-style:italic}
"""


def index_html(against: str, results: list[TaskResult], max_pairs: int,
               summary: dict[str, Any]) -> str:
    """The page a person reads: counts, thresholds in force, then per task the flagged pairs
    beside the closest unflagged ones, each with its scores and the rule that fired (or the
    thresholds it missed). `summary` is the run's summary.json content."""
    config = summary.get("config", {})
    tasks = summary.get("tasks", {})
    parts = [
        f"<!doctype html><meta charset=utf-8><title>dedup against {html.escape(against)}</title>",
        f"<style>{CSS}</style><main><h1>De-duplication against {html.escape(against)}</h1>",
        ("<p class=lead>Training and validation examples holding a near-duplicate of a test image "
        "are removed from their split (test splits are never changed). Each pair below sets a "
        "test image (left) against a training or validation image (right).</p>"),
        _cards_html(tasks), "<h2>Thresholds in force</h2>", _thresholds_html(config),
        "<h2>Counts per task and split</h2>", _counts_html(tasks),
    ]
    for res in results:
        _, thresholds = rules_in_force(config, res.task)
        groups = shown_pairs(res, max_pairs)
        t = tasks.get(res.task, {})
        decisions = ", ".join(f"{v} {k}" for k, v in t.get("decisions", {}).items())
        parts.append(f"<h2>{html.escape(res.task)}</h2><p class=lead>{len(res.pairs)} candidate "
                     f"pair(s) scored ({html.escape(decisions)}); "
                     f"{sum(p.example_removed for p in res.pairs)} removed an example.</p>")
        parts.append("<div class=side>")
        for title, group in groups.items():
            body = "".join(_pair_html(p, res.thumbs, thresholds) for p in group)
            if not body:
                body = ("<p class=empty>Nothing flagged: no pair met a rule.</p>"
                        if title == "Flagged" else "<p class=empty>No other candidate pairs."
                        "</p>")
            parts.append(f"<section><h3>{title} ({len(group)})</h3>{body}</section>")
        parts.append("</div>")
    parts.append("</main>")
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
    atomic_write_text(out / "index.html", index_html(against, results, max_pairs, summary))
    return summary
