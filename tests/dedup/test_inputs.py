"""Bad and awkward input: missing splits, wrong task selections, unreadable images, images shared
by train and val, an unknown model; and the PixMo target."""

from __future__ import annotations

import json

from builders.io import iter_records, read_manifest, split_dir
from dedup.cli import main

from .conftest import (
    TINY,
    jpeg,
    record,
    reencoded,
    reference_image,
    resized,
    tree_digest,
    write_split,
)


def _art(built, split, images_per_row):
    rows = [record("art_style", split, k + 1, imgs) for k, imgs in enumerate(images_per_row)]
    write_split(built, "art_style", split, rows)
    return rows


def test_missing_test_split_names_the_expected_folder(tmp_path, capsys):
    built = tmp_path / "built"
    for split in ("train", "val"):
        _art(built, split, [[jpeg(reference_image(k)) for k in range(3)]])
    rc = main(["--against", "blink", "--built", str(built), *TINY])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(split_dir(built, "art_style", "test")) in err
    assert "build-task art_style --split test" in err
    assert not (built / "dedup-blink").exists()


def test_missing_train_split_is_an_error_before_any_work(tmp_path, capsys):
    built = tmp_path / "built"
    _art(built, "test", [[jpeg(reference_image(k)) for k in range(3)]])
    _art(built, "val", [[jpeg(reference_image(9 + k)) for k in range(3)]])
    before = tree_digest(built)
    assert main(["--against", "blink", "--built", str(built), *TINY]) == 2
    assert str(split_dir(built, "art_style", "train")) in capsys.readouterr().err
    assert tree_digest(built) == before


def test_nothing_built_lists_every_expected_split(tmp_path, capsys):
    assert main(["--against", "pixmo", "--built", str(tmp_path / "nope"), *TINY]) == 2
    err = capsys.readouterr().err
    for split in ("train", "val", "test"):
        assert str(split_dir(tmp_path / "nope", "counting", split)) in err


def test_a_task_not_checked_against_that_test_set_is_refused(tmp_path, capsys):
    assert main(["--against", "blink", "--built", str(tmp_path), "--tasks", "counting", *TINY]) == 2
    err = capsys.readouterr().err
    assert "counting is not de-duplicated against 'blink'" in err and "localization" in err


def test_unreadable_images_and_shared_images_are_reported(tmp_path, capsys):
    """A broken test image and a broken training image are listed (the training example is
    removed under its own rule), and an image in both train and val is a problem: exit 1."""
    built = tmp_path / "built"
    refs = [reference_image(k) for k in range(6)]
    _art(built, "test", [[jpeg(refs[0]), jpeg(refs[1]), jpeg(refs[2])],
                         [jpeg(refs[3]), b"not an image", jpeg(refs[5])]])
    shared = jpeg(reference_image(50))
    train = _art(built, "train", [
        [jpeg(reference_image(40)), b"\xff\xd8\xff truncated", jpeg(reference_image(41))],
        [shared, jpeg(reference_image(42)), jpeg(reference_image(43))],
        [jpeg(reference_image(44)), jpeg(reference_image(45)), jpeg(reencoded(refs[5]))],
    ])
    _art(built, "val", [[jpeg(reference_image(46)), shared, jpeg(reference_image(47))]])
    rc = main(["--against", "blink", "--built", str(built), "--cache", str(tmp_path / "c"), *TINY])
    assert rc == 1
    captured = capsys.readouterr()
    assert "unreadable" in captured.out and "WARNING" in captured.err
    summary = json.loads((built / "dedup-blink" / "summary.json").read_text())
    task = summary["tasks"]["art_style"]
    bad = {(u["side"], u["image"]): u for u in task["unreadable"]}
    assert ("reference", "test/livr_test_Art_Style_2/image_2") in bad
    assert bad[("training", f"train/{train[0].idx}/image_2")]["action"] == "removed"
    assert task["cross_split_shared_images"] == [
        {"a": f"train/{train[1].idx}/image_1", "b": "val/livr_val_Art_Style_1/image_2", "by": "sha256"}]
    assert any("unreadable reference" in p for p in summary["problems"])
    rules = {e["idx"]: e["rule"] for e in read_manifest(split_dir(built, "art_style", "train"))["dedup"]["removed"]}
    assert rules[train[0].idx] == "unreadable_image"
    # the unreadable test image never hid the readable ones: the re-encoded copy is still caught
    assert rules[train[2].idx] in ("phash_ssim_raw", "phash_ssim_blur")  # the paper rule
    flagged = json.loads((built / "dedup-blink" / "flagged_sources.json").read_text())
    assert {e["idx"] for e in flagged["art_style"]["examples"]} == {train[2].idx}


def test_counting_against_pixmo(tmp_path, capsys):
    built = tmp_path / "built"
    refs = [reference_image(k) for k in range(3)]
    write_split(built, "counting", "test", [record("counting", "test", k + 1, [jpeg(im)])
                                             for k, im in enumerate(refs)])
    write_split(built, "counting", "train", [record("counting", "train", 1, [jpeg(resized(refs[1]))]),
                                              record("counting", "train", 2, [jpeg(reference_image(9))])])
    write_split(built, "counting", "val", [record("counting", "val", 1, [jpeg(reference_image(8))])])
    assert main(["--against", "pixmo", "--built", str(built), "--report", str(tmp_path / "r"), *TINY]) == 0
    gone = [r.idx for r in iter_records(split_dir(built, "counting", "train"), "removed-*.parquet")]
    assert gone == ["livr_train_Counting_1"]
    assert (tmp_path / "r" / "summary.json").is_file()
    assert read_manifest(split_dir(built, "counting", "val"))["dedup"]["n_removed"] == 0


def test_unknown_model_is_a_clear_error(tmp_path, capsys):
    built = tmp_path / "built"
    for split in ("train", "val", "test"):
        _art(built, split, [[jpeg(reference_image(k + 10 * len(split))) for k in range(3)]])
    rc = main(["--against", "blink", "--built", str(built), "--cache", str(tmp_path / "c"),
               "--model", "no-such-model", "--pretrained", "none", "--no-progress"])
    assert rc == 2
    assert "no-such-model" in capsys.readouterr().err
