"""Properties every task builder must have, checked on the miniature sources for every task
that has both a builder module and a miniature source in this version."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter

import pytest

from builders import miniature
from builders.io import read_manifest, split_dir
from builders.registry import load_registry

from .conftest import build_split

SEED = load_registry().defaults.seed  # what the `built` fixture builds with

N = {"train": 6, "val": 2, "test": 2}


def _buildable():
    have = set(miniature.sources())
    out = []
    for spec in load_registry().tasks.values():
        # Tasks with train / val splits and one option list for the whole task; the generalisation
        # benchmarks (options per record, test-only or train-only) have their own tests.
        fixed = {"train", "val"} <= set(spec.sizes) and (
            spec.answer_type == "open" or spec.num_options > 0)
        if fixed and spec.source in have and importlib.util.find_spec(f"builders.tasks.{spec.name}"):
            splits = ["train", "val"] + (["test"] if spec.test_source == "own" else [])
            out.append((spec.name, spec.source, tuple(splits)))
    return out


CASES = _buildable()
IDS = [c[0] for c in CASES]
# Relative Reflectance's letters are decided by the albedo (C about a quarter); its own tests check
# the class mix. Counting is open-ended; VSP's answers are plans.
BALANCED = [c for c in CASES if c[0] not in ("relative_reflectance", "counting", "vsp")]


@pytest.fixture(scope="module")
def built(mini_sources, tmp_path_factory):
    """Every buildable task, every own split, built once with seed 42."""
    out = tmp_path_factory.mktemp("built")
    return out, {
        (task, split): build_split(task, split, mini_sources[source], out, N[split])
        for task, source, splits in CASES for split in splits
    }


@pytest.mark.parametrize("task,source,splits", CASES, ids=IDS)
def test_records_follow_the_schema(built, task, source, splits):
    spec = load_registry().resolve(task)
    _, records = built
    for split in splits:
        rs = records[(task, split)]
        assert len(rs) == N[split]
        assert [r.idx for r in rs] == [f"livr_{split}_{spec.blink_config}_{i}"
                                       for i in range(1, N[split] + 1)]
        for r in rs:
            assert r.task == task and r.split == split and r.sub_task == spec.sub_task
            assert r.choices == list(spec.choices)
            assert r.explanation == ""
            src = json.loads(r.source)
            assert src["dataset"] == source and src["source_images"]
            if spec.answer_type == "mcq":
                assert r.answer in [f"({x})" for x in spec.letters]
                assert r.prompt.rstrip("\n").endswith(f"({spec.letters[-1]}) {spec.choices[-1]}")


@pytest.mark.parametrize("task,source,splits", CASES, ids=IDS)
def test_no_source_image_in_two_splits(built, task, source, splits):
    _, records = built
    seen: dict[str, str] = {}
    for split in splits:
        for r in records[(task, split)]:
            for img in json.loads(r.source)["source_images"]:
                assert seen.setdefault(img, split) == split, f"{img} in {seen[img]} and {split}"


@pytest.mark.parametrize("task,source,splits", CASES, ids=IDS)
def test_manifest_matches_records(built, task, source, splits):
    out, records = built
    import hashlib
    for split in splits:
        m = read_manifest(split_dir(out, task, split))
        rs = records[(task, split)]
        assert m["n"] == len(rs) and m["task"] == task and m["split"] == split and m["seed"] == 42
        assert [e["idx"] for e in m["records"]] == [r.idx for r in rs]
        assert [e["images"] for e in m["records"]] == [
            [hashlib.sha256(b).hexdigest() for b in r.images] for r in rs
        ]
        assert m["answer_counts"] == dict(Counter(r.answer for r in rs))


@pytest.mark.parametrize("task,source,splits", CASES, ids=IDS)
def test_same_seed_is_byte_identical_and_seeds_differ(built, mini_sources, tmp_path, task, source, splits):
    out, _ = built
    split = "train"
    again = tmp_path / "again"
    build_split(task, split, mini_sources[source], again, N[split], seed=SEED)
    first, second = split_dir(out, task, split), split_dir(again, task, split)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert {".livr/manifest.json", ".livr/dataset_info.json"} <= {f.as_posix() for f in files}
    for name in files:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (out / task / "README.md").is_file() and (again / task / "README.md").is_file()
    other = build_split(task, split, mini_sources[source], tmp_path / "other", N[split], seed=7)
    assert [r.images for r in other] != [r.images for r in build_split(
        task, split, mini_sources[source], tmp_path / "third", N[split], seed=SEED)]


@pytest.mark.parametrize("task,source,splits", BALANCED, ids=[c[0] for c in BALANCED])
def test_answers_are_balanced_across_letters(mini_sources, tmp_path, task, source, splits):
    spec = load_registry().resolve(task)
    n = 4 * spec.num_options
    rs = build_split(task, "train", mini_sources[source], tmp_path, n)
    counts = Counter(r.answer for r in rs)
    assert set(counts) == {f"({x})" for x in spec.letters}
    assert max(counts.values()) - min(counts.values()) <= 1, counts
