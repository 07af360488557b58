"""BLINK test splits: BLINK's val rows pass through unchanged (checked against the miniature's
parquet files read independently with pyarrow), BLINK's test rows are never read, sizes are
enforced with the standard message, and bad layouts name the expected one."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from builders.build import BuildRequest, InsufficientCandidates, run_build
from builders.cli import main
from builders.io import read_manifest, split_dir
from builders.registry import load_registry
from builders.sources import SourceLayoutError

from .conftest import build_split

BLINK_TASKS = [s for s in load_registry().tasks.values() if s.test_source == "blink"]
TEXT_COLUMNS = ("idx", "question", "sub_task", "choices", "answer", "prompt", "explanation")
IMAGE_COLUMNS = ("image_1", "image_2", "image_3", "image_4")


def blink_rows(root, config, split):
    return pq.read_table(root / config / f"{split}-00000-of-00001.parquet").to_pylist()


@pytest.mark.parametrize("spec", BLINK_TASKS, ids=[s.name for s in BLINK_TASKS])
def test_val_rows_round_trip_unchanged(mini_sources, tmp_path, spec):
    root = mini_sources["blink"]
    truth = blink_rows(root, spec.blink_config, "val")
    records = build_split(spec.name, "test", root, tmp_path, len(truth))
    built = pq.read_table(next(split_dir(tmp_path, spec.name, "test").glob("*.parquet"))).to_pylist()
    assert len(built) == len(records) == len(truth)
    for row, rec, want in zip(built, records, truth):
        for col in TEXT_COLUMNS:
            assert row[col] == want[col], (want["idx"], col)
        for col in IMAGE_COLUMNS:
            assert (row[col] is None) == (want[col] is None)
            if want[col] is not None:
                assert row[col] == want[col], (want["idx"], col)
        assert (row["task"], row["split"]) == (spec.name, "test")
        src = json.loads(row["source"])
        k = sum(want[c] is not None for c in IMAGE_COLUMNS)
        assert src == {
            "dataset": "blink", "config": spec.blink_config, "blink_split": "val",
            "blink_idx": want["idx"],
            "source_images": [f"{spec.blink_config}/val-00000-of-00001.parquet#{want['idx']}/image_{i}"
                              for i in range(1, k + 1)],
        }
    m = read_manifest(split_dir(tmp_path, spec.name, "test"))
    assert [e["idx"] for e in m["records"]] == [w["idx"] for w in truth] and m["rejected"] == {}


def test_blink_test_rows_are_never_read(mini_sources, tmp_path):
    root = tmp_path / "BLINK"
    shutil.copytree(mini_sources["blink"], root)
    hidden = {}
    for spec in BLINK_TASKS:
        test_file = root / spec.blink_config / "test-00000-of-00001.parquet"
        hidden[spec.name] = blink_rows(root, spec.blink_config, "test")
        test_file.write_bytes(b"not parquet: reading this file would fail")
    for spec in BLINK_TASKS:
        n = len(blink_rows(root, spec.blink_config, "val"))
        recs = build_split(spec.name, "test", root, tmp_path / "out", n)
        clean = build_split(spec.name, "test", mini_sources["blink"], tmp_path / "ref", n)
        assert [r.to_row() | {"source": ""} for r in recs] == [
            r.to_row() | {"source": ""} for r in clean]
        test_images = {r[c]["bytes"] for r in hidden[spec.name] for c in IMAGE_COLUMNS if r[c]}
        assert not test_images & {b for r in recs for b in r.images}
        assert all(r.idx.startswith("val_") and r.answer != "hidden" for r in recs)


def test_size_defaults_to_the_paper_and_a_bigger_n_fails(mini_sources, tmp_path, capsys):
    root = mini_sources["blink"]
    n = len(blink_rows(root, "Jigsaw", "val"))
    with pytest.raises(InsufficientCandidates, match=f"only {n} of 150 .*Use --n {n}"):
        run_build(BuildRequest("jigsaw", "test", root, tmp_path, progress=False))
    args = ["jigsaw", "--split", "test", "--source-root", str(root), "--out", str(tmp_path),
            "--no-progress"]
    assert main([*args, "--n", str(n + 1)]) == 1
    assert f"only {n} of {n + 1} requested examples" in capsys.readouterr().err
    assert not split_dir(tmp_path, "jigsaw", "test").exists()
    assert main([*args, "--n", str(n)]) == 0
    assert read_manifest(split_dir(tmp_path, "jigsaw", "test"))["n"] == n


def test_missing_config_or_root_names_the_layout(mini_sources, tmp_path):
    with pytest.raises(SourceLayoutError, match="Expected layout"):
        build_split("jigsaw", "test", tmp_path / "nowhere", tmp_path / "out", 1)
    root = tmp_path / "BLINK"
    shutil.copytree(mini_sources["blink"], root)
    shutil.rmtree(root / "Jigsaw")
    with pytest.raises(SourceLayoutError, match=r"Jigsaw/val-00000-of-00001\.parquet") as exc:
        build_split("jigsaw", "test", root, tmp_path / "out", 1)
    assert "Expected layout" in str(exc.value)
    assert not split_dir(tmp_path / "out", "jigsaw", "test").exists()


def test_a_test_file_in_place_of_val_is_refused(mini_sources, tmp_path):
    root = tmp_path / "BLINK"
    shutil.copytree(mini_sources["blink"], root)
    shutil.copy(root / "Jigsaw" / "test-00000-of-00001.parquet",
                root / "Jigsaw" / "val-00000-of-00001.parquet")
    with pytest.raises(ValueError, match="'hidden'"):
        build_split("jigsaw", "test", root, tmp_path / "out", 1)


def test_a_hub_cache_is_read_like_the_plain_layout(mini_sources, tmp_path):
    repo = tmp_path / "hub" / "datasets--BLINK-Benchmark--BLINK"
    snapshot = repo / "snapshots" / "0123abcd"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    (repo / "snapshots" / "old").mkdir(parents=True)
    for f in sorted(mini_sources["blink"].glob("*/*.parquet")):
        (snapshot / f.parent.name).mkdir(parents=True, exist_ok=True)
        (snapshot / f.parent.name / f.name).symlink_to(f)  # the hub links snapshots to blobs
    n = len(blink_rows(mini_sources["blink"], "Art_Style", "val"))
    from_cache = build_split("art_style", "test", tmp_path, tmp_path / "a", n)
    plain = build_split("art_style", "test", mini_sources["blink"], tmp_path / "b", n)
    assert [r.to_row() for r in from_cache] == [r.to_row() for r in plain]
