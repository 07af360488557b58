"""`dedup --against blink` on a miniature built tree with planted near-duplicates (conftest.py):
what is removed, what is kept, what is written where, and that a re-run changes nothing."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest

from builders.io import iter_records, read_manifest, read_split, split_dir
from dedup.cli import main

from .conftest import TINY, Plan, tree_digest

TASKS = ("localization", "art_style", "semantic_correspondence")
SCORES = ("cosine", "phash", "phash_whole", "ssim_raw", "ssim_blur", "ssim_median", "ncc", "align")


@pytest.fixture(scope="module")
def ran(plan: Plan, tmp_path_factory):
    """The planted tree before and after one run with raw source images."""
    before = {(t, s): read_split(split_dir(plan.built, t, s)) for t in TASKS for s in ("train", "val")}
    test_digest = {t: tree_digest(split_dir(plan.built, t, "test")) for t in TASKS}
    cache = tmp_path_factory.mktemp("cache")
    argv = ["--against", "blink", "--built", str(plan.built), "--source-root", str(plan.sources),
            "--cache", str(cache), *TINY]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(argv)
    return {"rc": rc, "stdout": out.getvalue(), "before": before, "test_digest": test_digest, "argv": argv, "cache": cache,
            "report": plan.built / "dedup-blink"}


def _removed_idx(plan: Plan, task: str) -> set[str]:
    out = set()
    for split in ("train", "val"):
        out |= {r.idx for r in iter_records(split_dir(plan.built, task, split), "removed-*.parquet")}
    return out


def _pairs(ran) -> list[dict]:
    return [json.loads(line) for line in (ran["report"] / "pairs.jsonl").read_text().splitlines()]


def test_run_succeeds_and_prints_the_table(ran, plan):
    assert ran["rc"] == 0
    lines = ran["stdout"].splitlines()
    assert lines[0] == "dedup against blink"
    assert lines[1].split() == ["task", "split", "examined", "images", "raw", "flagged",
                                "removed", "total", "kept"]
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in lines[3:] if line.split()
            and line.split()[0] in TASKS}
    for task in TASKS:
        flagged = sum(int(rows[(task, s)][3]) for s in ("train", "val"))
        assert flagged == len(plan.dups[task])
    assert "raw source image(s) not found" in ran["stdout"]


@pytest.mark.parametrize("task", TASKS)
def test_every_planted_duplicate_is_removed_and_nothing_else(ran, plan, task):
    removed = _removed_idx(plan, task)
    assert removed == plan.dups[task]
    assert not removed & plan.lookalikes[task]
    kept = {r.idx for s in ("train", "val") for r in read_split(split_dir(plan.built, task, s))}
    assert kept == plan.keep[task]


@pytest.mark.parametrize("task", TASKS)
def test_test_split_is_byte_identical(ran, plan, task):
    assert tree_digest(split_dir(plan.built, task, "test")) == ran["test_digest"][task]


@pytest.mark.parametrize("task", TASKS)
def test_removed_rows_are_recoverable_and_equal_the_originals(ran, plan, task):
    for split in ("train", "val"):
        d = split_dir(plan.built, task, split)
        original = {r.idx: r for r in ran["before"][(task, split)]}
        kept = read_split(d)
        removed = list(iter_records(d, "removed-*.parquet"))
        assert sorted(r.idx for r in kept + removed) == sorted(original)
        for r in kept + removed:
            assert r == original[r.idx]
        # kept rows keep their order; the manifest describes what is left and why the rest went
        assert [r.idx for r in kept] == [r.idx for r in ran["before"][(task, split)]
                                         if r.idx in {k.idx for k in kept}]
        m = read_manifest(d)
        assert m["n"] == len(kept) and [e["idx"] for e in m["records"]] == [r.idx for r in kept]
        assert m["dedup"]["against"] == "blink"
        assert m["dedup"]["n_removed"] == len(removed)
        assert {e["idx"] for e in m["dedup"]["removed"]} == {r.idx for r in removed}
        assert all(e["rule"] and e["matches"] for e in m["dedup"]["removed"])
        assert m["dedup"]["rules"]["phash_max"] >= 0 and m["dedup"]["model"] == "tiny"


def test_pairs_jsonl_lists_every_decision_with_scores(ran, plan):
    pairs = _pairs(ran)
    assert pairs
    for p in pairs:
        assert all(k in p for k in SCORES)
        assert p["decision"] in ("duplicate", "borderline", "distinct")
        assert (p["rule"] != "") == (p["decision"] != "distinct")
    # every removal is backed by duplicate pairs that say so; no look-alike pair is a duplicate
    for task in TASKS:
        flagged = {p["candidate"]["idx"] for p in pairs if p["task"] == task and p["example_removed"]}
        assert flagged == plan.dups[task]
        for p in pairs:
            if p["task"] == task and p["candidate"]["idx"] in plan.lookalikes[task]:
                assert p["decision"] != "duplicate", p
    # one line per candidate, as many as the summary counts
    summary = json.loads((ran["report"] / "summary.json").read_text())
    for task in TASKS:
        assert sum(p["task"] == task for p in pairs) == summary["tasks"][task]["candidates"]


def test_pair_task_needs_both_images_aligned_or_swapped(ran, plan):
    m = {s: read_manifest(split_dir(plan.built, "semantic_correspondence", s)) for s in ("train", "val")}
    orders = {e["idx"]: e.get("order") for s in m.values() for e in s["dedup"]["removed"]}
    assert sorted(orders.values()) == ["aligned", "swapped"]
    summary = json.loads((ran["report"] / "summary.json").read_text())
    sc = summary["tasks"]["semantic_correspondence"]
    assert sc["partial_pair_matches"] >= 1
    partial = {p["candidate"]["idx"] for p in _pairs(ran) if p["task"] == "semantic_correspondence"
               and p["decision"] == "duplicate" and not p["example_removed"]}
    assert plan.partial <= partial


def test_raw_source_image_catches_what_the_rendering_hides(ran, plan):
    """The painted-over example is removed through its raw source image, and the missing raw
    files of two look-alikes are reported, not fatal."""
    m = read_manifest(split_dir(plan.built, "localization", "train"))
    entry = next(e for e in m["dedup"]["removed"] if e["idx"] == plan.raw_only)
    assert all("raw:train2017/d.jpg" in x for x in entry["matches"])
    summary = json.loads((ran["report"] / "summary.json").read_text())
    missing = summary["tasks"]["localization"]["raw_missing"]
    assert missing["count"] == 4
    assert {x["source_image"] for x in missing["first"]} == {f"train2017/ll{s}.jpg" for s in (1, 2, 3, 4)}


def test_summary_counts_and_flagged_sources(ran, plan):
    summary = json.loads((ran["report"] / "summary.json").read_text())
    assert summary["problems"] == []
    for task in TASKS:
        t = summary["tasks"][task]
        assert sum(s["removed_now"] for s in t["splits"].values()) == len(plan.dups[task])
        assert sum(s["examples"] for s in t["splits"].values()) == len(plan.dups[task]) + len(plan.keep[task])
        assert t["decisions"]["duplicate"] >= 1 and t["candidates"] == sum(t["decisions"].values())
    flagged = json.loads((ran["report"] / "flagged_sources.json").read_text())
    assert set(flagged["localization"]["source_images"]) == {f"train2017/{c}.jpg" for c in "abcd"}
    assert {e["idx"] for e in flagged["art_style"]["examples"]} == plan.dups["art_style"]


def test_removed_ids_flagged_ids_and_cards_follow_the_run(ran, plan, tmp_path):
    """removed_ids.txt is the plain id list; flagged_sources.json lists each split's removed ids
    as its manifest does; the dataset cards were regenerated, so `load_dataset` of a task gives
    exactly its kept rows."""
    import datasets
    import yaml

    ids = (ran["report"] / "removed_ids.txt").read_text().splitlines()
    assert ids == sorted(set().union(*(_removed_idx(plan, t) for t in TASKS)))
    flagged = json.loads((ran["report"] / "flagged_sources.json").read_text())
    for task in TASKS:
        card = yaml.safe_load((plan.built / task / "README.md").read_text().split("---\n")[1])
        counts = {s["name"]: s["num_examples"] for s in card["dataset_info"]["splits"]}
        ds = datasets.load_dataset(str(plan.built / task), cache_dir=str(tmp_path / task))
        for split, name in (("train", "train"), ("val", "validation")):
            path = split_dir(plan.built, task, split)
            manifest = read_manifest(path)
            assert flagged[task]["removed"][split] == sorted(
                e["idx"] for e in manifest["dedup"]["removed"])
            kept = [r.idx for r in read_split(path)]
            assert counts[name] == len(kept) and list(ds[name]["idx"]) == kept


def test_html_shows_flagged_pairs_side_by_side(ran, plan):
    page = (ran["report"] / "index.html").read_text()
    assert page.count("data:image/jpeg;base64,") >= 2 * len(plan.dups["art_style"])
    for task in TASKS:
        assert f"<h2>{task}</h2>" in page
        for idx in plan.dups[task]:
            assert idx in page


def test_rerun_is_idempotent_and_uses_the_cache(ran, plan, tmp_path, capsys, monkeypatch):
    """A second run on the filtered copy removes nothing, rewrites nothing and never builds the
    model (every embedding is cached)."""
    built = tmp_path / "built"
    shutil.copytree(plan.built, built)
    shutil.rmtree(built / "dedup-blink")
    before = tree_digest(built)
    chunks = sorted(p.name for p in ran["cache"].rglob("*.npz"))

    from dedup import embed

    def no_model(*a, **k):
        raise AssertionError("the model was built although every embedding is cached")

    monkeypatch.setattr(embed.ClipEmbedder, "__init__", no_model)
    argv = [a if a != str(plan.built) else str(built) for a in ran["argv"]]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "dedup against blink" in out
    after = {k: v for k, v in tree_digest(built).items() if not k.startswith("dedup-blink/")}
    assert after == before
    assert sorted(p.name for p in ran["cache"].rglob("*.npz")) == chunks
    summary = json.loads((built / "dedup-blink" / "summary.json").read_text())
    for task in TASKS:
        splits = summary["tasks"][task]["splits"].values()
        assert all(s["removed_now"] == 0 and not s["rewritten"] for s in splits)
        assert sum(s["removed_total"] for s in splits) == len(plan.dups[task])
