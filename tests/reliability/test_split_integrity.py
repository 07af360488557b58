"""A split is whole or refused: every reader of a built split (the record readers, `builders.verify`,
dedup, the harness planner and its cell data, `build-task --exclude`) checks it against its
manifest, and a missing, truncated, extra, foreign or modified shard stops the command with an
error naming the split and the fix. Nothing is rewritten from a split that was not read whole."""

from __future__ import annotations

import json

import pytest

from builders.cli import main as build_task
from builders.io import (
    SplitDamagedError,
    iter_records,
    read_manifest,
    read_split,
    side_file,
    split_digest,
    split_dir,
    verify_split,
)
from builders.verify import main as verify_main
from dedup.cli import main as dedup_main
from harness.config import load_table
from harness.executor import CellData
from harness.plan import MissingSplitsError, plan_cells

from . import splits

TASK = "art_style"  # de-duplicated against BLINK, trained on by Table 1
FIX = "build-task art_style --split train"


@pytest.fixture
def built(tmp_path):
    built = tmp_path / "built"
    for k, split in enumerate(("train", "val", "test")):
        splits.write(built, TASK, split, n=10, seed=k)
    return built


def _damage(built, fault: str) -> str:
    target = split_dir(built, TASK, "train")
    return splits.FAULTS[fault](target, split_dir(built, TASK, "val"))


def _assert_names_split_and_fix(text: str, built, expected: str) -> None:
    assert str(split_dir(built, TASK, "train")) in text
    assert expected in text
    assert FIX in text and "--overwrite" in text


@pytest.mark.parametrize("fault", sorted(splits.FAULTS))
def test_record_readers_refuse(built, fault):
    expected = _damage(built, fault)
    path = split_dir(built, TASK, "train")
    for read in (read_split, lambda p: list(iter_records(p)), lambda p: verify_split(p, True),
                 split_digest):
        with pytest.raises(SplitDamagedError) as err:
            read(path)
        _assert_names_split_and_fix(str(err.value), built, expected)


@pytest.mark.parametrize("fault", sorted(splits.FAULTS))
def test_verify_refuses(built, tmp_path, fault, capsys):
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps(read_manifest(split_dir(built, TASK, "train"))))
    expected = _damage(built, fault)
    assert verify_main([str(split_dir(built, TASK, "train")), str(ref)]) == 2
    _assert_names_split_and_fix(capsys.readouterr().err, built, expected)


@pytest.mark.parametrize("fault", sorted(splits.FAULTS))
def test_dedup_refuses_and_rewrites_nothing(built, tmp_path, fault, capsys):
    """Before: one missing shard of three made dedup rewrite the split from the rest, exit 0."""
    expected = _damage(built, fault)
    before = splits.tree(built)
    rc = dedup_main(["--against", "blink", "--built", str(built), "--tasks", TASK, "--model",
                     "tiny", "--pretrained", "none", "--device", "cpu", "--no-progress",
                     "--cache", str(tmp_path / "cache")])
    assert rc == 2
    _assert_names_split_and_fix(capsys.readouterr().err, built, expected)
    assert splits.tree(built) == before
    assert not (built / "dedup-blink").exists()


def _table():
    return load_table("1", {"tasks": [TASK], "methods": ["direct_sft"],
                            "backbones": ["qwen2.5-vl-3b"]})


@pytest.mark.parametrize("fault", sorted(splits.FAULTS))
def test_harness_plan_refuses(built, fault):
    expected = _damage(built, fault)
    with pytest.raises(MissingSplitsError) as err:
        plan_cells(_table(), built, {"name": "oracle"})
    _assert_names_split_and_fix(str(err.value), built, expected)


@pytest.mark.parametrize("fault", sorted(splits.FAULTS))
def test_harness_cell_data_refuses(built, fault):
    (cell,) = plan_cells(_table(), built, {"name": "oracle"})
    expected = _damage(built, fault)
    with pytest.raises(SplitDamagedError) as err:
        CellData(built, cell.config).train()
    _assert_names_split_and_fix(str(err.value), built, expected)


@pytest.mark.parametrize("fault", sorted(splits.FAULTS))
def test_build_exclude_refuses(built, tmp_path, fault, capsys):
    flagged = tmp_path / "flagged_sources.json"
    flagged.write_text(json.dumps({TASK: {"source_images": [], "examples": [],
                                          "removed": {"train": []}}}))
    expected = _damage(built, fault)
    before = splits.tree(built)
    rc = build_task([TASK, "--split", "train", "--out", str(built), "--overwrite", "--exclude",
                     str(flagged), "--source-root", str(tmp_path / "unused"), "--no-progress"])
    assert rc == 2
    _assert_names_split_and_fix(capsys.readouterr().err, built, expected)
    assert splits.tree(built) == before


def test_a_split_of_an_older_layout_is_refused_with_the_fix(built):
    path = split_dir(built, TASK, "train")
    splits.legacy(path, path)
    with pytest.raises(SplitDamagedError) as err:
        read_split(path)
    assert "older version of the toolkit" in str(err.value) and FIX in str(err.value)


def test_a_damaged_side_file_is_refused(built):
    from dedup.apply import apply_split
    from dedup.pairs import Removal

    path = split_dir(built, TASK, "train")
    rows = read_split(path)
    apply_split(path, rows, [Removal("train", rows[0].idx, "phash_ssim")], "blink", {}, 4)
    assert [r.idx for r in iter_records(path, "removed-*.parquet")] == [rows[0].idx]
    removed = side_file(path, "removed-00000-of-00001.parquet")
    removed.write_bytes(removed.read_bytes()[:-10])
    with pytest.raises(SplitDamagedError, match="removed-00000-of-00001.parquet has"):
        list(iter_records(path, "removed-*.parquet"))


def test_cell_hash_follows_the_shards_content(built, tmp_path):
    """Same content in another folder: same hash. A rebuild with other content: another hash.
    A shard changed under an unchanged manifest: refused (before: the old hash, the new data)."""
    (cell,) = plan_cells(_table(), built, {"name": "oracle"})
    twin = tmp_path / "twin"
    for k, split in enumerate(("train", "val", "test")):
        splits.write(twin, TASK, split, n=10, seed=k)
    assert plan_cells(_table(), twin, {"name": "oracle"})[0].hash == cell.hash
    splits.write(twin, TASK, "train", n=10, seed=7, overwrite=True)
    assert plan_cells(_table(), twin, {"name": "oracle"})[0].hash != cell.hash
    assert cell.config.data[f"{TASK}/train"] == split_digest(split_dir(built, TASK, "train"))


@pytest.fixture
def deduplicated(mini_sources, tmp_path):
    """localization/train built from the miniature COCO, then one row removed as dedup does."""
    from dedup.apply import apply_split
    from dedup.pairs import Removal

    out = tmp_path / "built"
    assert build_task(["localization", "--split", "train", "--source-root",
                       str(mini_sources["coco"]), "--out", str(out), "--n", "4",
                       "--no-progress"]) == 0
    path = split_dir(out, "localization", "train")
    rows = read_split(path)
    apply_split(path, rows, [Removal("train", rows[1].idx, "phash_ssim")], "blink", {}, 500)
    return out, rows[1]


def _refill(mini_sources, out, flagged) -> int:
    return build_task(["localization", "--split", "train", "--source-root",
                       str(mini_sources["coco"]), "--out", str(out), "--n", "4", "--overwrite",
                       "--exclude", str(flagged), "--no-progress"])


def test_exclude_from_the_splits_own_dedup_refills_it(deduplicated, mini_sources, tmp_path):
    out, gone = deduplicated
    images = gone.source_dict["source_images"]
    flagged = tmp_path / "flagged_sources.json"
    flagged.write_text(json.dumps({"localization": {
        "source_images": images, "examples": [], "removed": {"train": [gone.idx], "val": []}}}))
    assert _refill(mini_sources, out, flagged) == 0
    rows = read_split(split_dir(out, "localization", "train"))
    assert len(rows) == 4
    assert not any(set(images) & set(r.source_dict["source_images"]) for r in rows)


@pytest.mark.parametrize("listed", [[], "plain list"])
def test_exclude_not_from_the_splits_dedup_is_refused(deduplicated, mini_sources, tmp_path,
                                                       capsys, listed):
    """A flagged_sources.json older than the split's last dedup (or a bare list that cannot be
    checked) would bring removed examples back: refused, the split left as it is."""
    out, gone = deduplicated
    flagged = tmp_path / "flagged_sources.json"
    doc = (gone.source_dict["source_images"] if listed == "plain list" else
           {"localization": {"source_images": [], "examples": [], "removed": {"train": listed}}})
    flagged.write_text(json.dumps(doc))
    before = splits.tree(out)
    assert _refill(mini_sources, out, flagged) == 2
    err = capsys.readouterr().err
    assert str(split_dir(out, "localization", "train")) in err and "dedup" in err
    assert ("was not written by the de-duplication" if listed == [] else
            "does not list which ids dedup removed") in err
    assert splits.tree(out) == before
