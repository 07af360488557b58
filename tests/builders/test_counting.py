"""Counting from PixMo-Count, with the images served by a local HTTP server (builders.miniature
.pixmo.serve): exactly the dead URLs are dropped, counts stay in range and uniform on train, a
sha256 mismatch is kept, both points encodings are read, and a rerun is served from the cache.
The truth comes from the miniature's parquet files read with pyarrow and from the URL paths
(`/missing/`, `/slow/`, `/html/` are dead by construction)."""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from builders.build import BuildContext, BuildRequest, InsufficientCandidates, run_build
from builders.io import read_manifest, read_split
from builders.miniature import pixmo as mini
from builders.registry import load_registry
from builders.sources import SourceLayoutError
from builders.sources import pixmo as reader
from builders.tasks import counting

DEAD_KINDS = {"missing": "dead_url", "slow": "url_timeout", "html": "not_an_image"}


def fast_registry():
    """The real registry with download settings that make the slow URL (2 s) a timeout at once
    (retries are tested in test_download.py)."""
    reg = load_registry()
    spec = reg.resolve("counting")
    params = {**spec.params, "download_timeout_s": 0.5, "download_retries": 0}
    return replace(reg, tasks={**reg.tasks, "counting": replace(spec, params=params)})


def rows(top: Path, split: str) -> list[dict]:
    return pq.read_table(top / "data" / f"{split}-00000-of-00001.parquet").to_pylist()


def kind(url: str) -> str:
    return urlparse(url).path.split("/")[1]


def served_file(top: Path, url: str) -> Path:
    return top.parent / mini.WEB / urlparse(url).path.lstrip("/")


@pytest.fixture()
def served(tmp_path):
    with mini.serve(tmp_path, slow_s=2.0) as web:
        yield mini.write(tmp_path, seed=0, base_url=web.base_url), web


def build(top: Path, split: str, out: Path, n: int):
    return run_build(BuildRequest("counting", split, top, out, n=n, progress=False),
                     fast_registry())


def test_train_drops_exactly_the_dead_urls_and_keeps_counts_uniform(served):
    top, _ = served
    spec = fast_registry().resolve("counting")
    ctx = BuildContext(spec, "train", top, 42)
    examples = list(counting.build(ctx))  # run dry: every candidate is visited

    held_out = {r["image_url"] for s in ("validation", "test") for r in rows(top, s)}
    train = rows(top, "train")
    in_range = [r for r in train if r["count"] is not None and 2 <= r["count"] <= 10]
    candidates = [r for r in in_range if r["image_url"] not in held_out]
    live = {r["image_url"]: r for r in candidates if kind(r["image_url"]) not in DEAD_KINDS}
    got = [e.source["url"] for e in examples]
    assert sorted(got) == sorted(live)  # every live row once, no dead one, no repeat
    dead = Counter(DEAD_KINDS[kind(r["image_url"])] for r in candidates
                   if kind(r["image_url"]) in DEAD_KINDS)
    assert dead == {"dead_url": 1, "url_timeout": 1, "not_an_image": 1}
    assert {k: ctx.rejections[k] for k in dead} == dead
    assert ctx.rejections["count_out_of_range"] == sum(
        1 for r in train if r["count"] is not None and not 2 <= r["count"] <= 10)
    assert ctx.rejections["image_in_official_eval_split"] == len(in_range) - len(candidates)
    assert ctx.rejections["malformed_count"] == sum(r["count"] is None for r in train)
    assert ctx.rejections["duplicate_url"] == len(candidates) - len(
        {r["image_url"] for r in candidates})

    answers = [int(e.answer) for e in examples]
    assert set(answers) == set(range(2, 11))
    for k in range(1, len(answers) + 1):  # round-robin: every prefix is balanced within one
        c = Counter(answers[:k])
        assert max(c.values()) - min(c.get(v, 0) for v in range(2, 11)) <= 1
    for e in examples:
        truth = live[e.source["url"]]
        assert e.answer == str(truth["count"]) and e.fields == {"label": truth["label"]}
        assert e.source["points"] == [[round(p["x"], 2), round(p["y"], 2)] for p in truth["points"]]
        served_pixels = np.asarray(Image.open(served_file(top, e.source["url"])).convert("RGB"))
        assert np.array_equal(np.asarray(e.images[0]), served_pixels)


def test_sha256_mismatch_is_counted_but_kept(served):
    top, _ = served
    ctx = BuildContext(fast_registry().resolve("counting"), "train", top, 42)
    examples = list(counting.build(ctx))
    mismatched = [
        e for e in examples
        if hashlib.sha256(served_file(top, e.source["url"]).read_bytes()).hexdigest()
        != next(r["image_sha256"] for r in rows(top, "train") if r["image_url"] == e.source["url"])
    ]
    assert len(mismatched) == 1 == ctx.warnings[counting.SHA256_WARNING]
    sha = mismatched[0].source["image_sha256"]
    assert sha["actual"] != sha["expected"]
    assert sha["actual"] == hashlib.sha256(
        served_file(top, mismatched[0].source["url"]).read_bytes()).hexdigest()


@pytest.mark.parametrize("split,pixmo_split,dead", [
    ("val", "validation", {"dead_url": 1, "not_an_image": 1}),
    ("test", "test", {"url_timeout": 1}),
])
def test_eval_splits_are_the_live_official_rows_in_file_order(served, tmp_path, split,
                                                              pixmo_split, dead):
    top, _ = served
    official = rows(top, pixmo_split)
    live = [r for r in official if kind(r["image_url"]) not in DEAD_KINDS]
    assert len(live) < len(official)
    recs = read_split(build(top, split, tmp_path / "out", len(live)))
    assert [r.source_dict["url"] for r in recs] == [r["image_url"] for r in live]
    assert [r.answer for r in recs] == [str(r["count"]) for r in live]
    assert [r.prompt for r in recs] == [f"How many {r['label']} are there in the image?"
                                        for r in live]
    assert all(r.choices == [] and r.source_dict["pixmo_split"] == pixmo_split for r in recs)
    assert read_manifest(tmp_path / "out" / "counting" / split)["rejected"] == dead
    with pytest.raises(InsufficientCandidates, match=f"only {len(live)} of {len(live) + 1}"):
        build(top, split, tmp_path / "more", len(live) + 1)


def test_rerun_is_served_from_the_cache(served, tmp_path, monkeypatch):
    top, web = served
    cache = tmp_path / "elsewhere"
    monkeypatch.setenv(reader.CACHE_ENV, str(cache))
    sizes = {"train": 27, "val": 6, "test": 5}
    for split, n in sizes.items():
        build(top, split, tmp_path / "first", n)
    assert any(cache.rglob("*")) and not (top / reader.CACHE_FOLDER).exists()
    # every live eval URL was fetched, and no live URL twice, whatever order the pool ran them in
    live_eval = {urlparse(r["image_url"]).path for s in ("validation", "test")
                 for r in rows(top, s) if kind(r["image_url"]) == "img"}
    assert live_eval <= set(web.hits)
    assert all(k == 1 for p, k in web.hits.items() if kind(p) == "img")
    before = Counter(web.hits)
    for split, n in sizes.items():
        build(top, split, tmp_path / "second", n)
    # only the transient failure (the slow URL's timeout) is tried again; nothing else is
    again = Counter(web.hits) - before
    assert set(again) == {p for p in before if kind(p) == "slow"} and set(again)
    for split in sizes:
        first, second = (tmp_path / run / "counting" / split for run in ("first", "second"))
        files = sorted(f.relative_to(first) for f in first.rglob("*") if f.is_file())
        assert files == sorted(f.relative_to(second) for f in second.rglob("*") if f.is_file())
        for f in files:
            assert (first / f).read_bytes() == (second / f).read_bytes(), f


def test_points_as_a_dict_of_lists_are_read(mini_sources, tmp_path):
    top = tmp_path / "pixmo-count"
    shutil.copytree(mini_sources["pixmo"], top)
    path = top / "data" / "train-00000-of-00001.parquet"
    table = pq.read_table(path)
    as_lists = pa.array(
        [None if p is None else {"x": [q["x"] for q in p], "y": [q["y"] for q in p]}
         for p in table.column("points").to_pylist()],
        pa.struct([("x", pa.list_(pa.float32())), ("y", pa.list_(pa.float32()))]),
    )
    pq.write_table(table.set_column(table.column_names.index("points"), "points", as_lists), path)
    assert pa.types.is_struct(pq.read_schema(path).field("points").type)
    converted, _ = reader.read_rows(top, "train")
    original, _ = reader.read_rows(mini_sources["pixmo"], "train")
    assert converted == original and sum(len(r.points) for r in original) > 0
    recs = read_split(build(top, "train", tmp_path / "out", 9))
    truth = {r["image_url"]: r["points"] for r in table.to_pylist()}
    for r in recs:
        assert r.source_dict["points"] == [[round(p["x"], 2), round(p["y"], 2)]
                                           for p in truth[r.source_dict["url"]]]


def test_bad_input_names_the_layout_or_the_column(tmp_path):
    with pytest.raises(SourceLayoutError, match="data/train-00000-of-00001.parquet"):
        reader.find_root(tmp_path)
    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"image_url": ["http://x/a.jpg"], "count": [3]}),
                   tmp_path / "data" / "train-00000-of-00001.parquet")
    with pytest.raises(ValueError, match="no column label"):
        reader.read_rows(tmp_path, "train")
