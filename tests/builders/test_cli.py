"""`build-task` behaviour on good and bad input: help, errors, overwrite protection, atomicity."""

from __future__ import annotations

import json
import shutil

import pytest

import builders.build as build_mod
from builders.cli import main
from builders.io import read_manifest, split_dir
from builders.registry import get_task, load_registry
from builders.splitting import assign_split


def test_help_explains_where_sources_go(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "annotations/instances_train2017.json" in out
    for name in ("jigsaw", "visual_correspondence [hpatches]", "semantic_correspondence [spair]"):
        assert name in out


def test_unknown_task_lists_the_known_ones(capsys):
    assert main(["jigsw", "--split", "train"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'jigsw'" in err and "jigsaw" in err and "hpatches" in err


def test_missing_source_root_names_the_layout(tmp_path, capsys):
    rc = main(["jigsaw", "--split", "train", "--source-root", str(tmp_path / "nope"),
               "--out", str(tmp_path / "out"), "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "train2017" in err and "Expected layout" in err
    assert not (tmp_path / "out" / "jigsaw" / "train").exists()


def test_build_then_refuse_to_overwrite(mini_sources, tmp_path, capsys):
    args = ["jigsaw", "--split", "val", "--source-root", str(mini_sources["coco"]),
            "--out", str(tmp_path), "--n", "2", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 examples" in out and "answers:" in out
    target = split_dir(tmp_path, "jigsaw", "val")
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert {p.relative_to(target).as_posix() for p in before} == {
        "data-00000-of-00001.parquet", ".livr/manifest.json", ".livr/dataset_info.json",
        ".livr/helpers-mirage.parquet"}  # Jigsaw keeps Mirage's helper images beside the split
    assert main(args + ["--seed", "3"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
    assert main(args + ["--seed", "3", "--overwrite"]) == 0
    assert read_manifest(target)["seed"] == 3


def test_too_few_candidates_reports_each_filter(mini_sources, tmp_path, capsys):
    rc = main(["jigsaw", "--split", "val", "--source-root", str(mini_sources["coco"]),
               "--out", str(tmp_path), "--n", "500", "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "only" in err and "of 500" in err and "rejected by filter" in err
    assert not split_dir(tmp_path, "jigsaw", "val").exists()
    assert not any(tmp_path.rglob("*.parquet"))


def test_interrupted_build_leaves_no_split(mini_sources, tmp_path, monkeypatch):
    real = build_mod.to_record
    calls = {"n": 0}

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(build_mod, "to_record", dying)
    with pytest.raises(KeyboardInterrupt):
        main(["jigsaw", "--split", "train", "--source-root", str(mini_sources["coco"]),
              "--out", str(tmp_path), "--n", "4", "--no-progress"])
    assert not split_dir(tmp_path, "jigsaw", "train").exists()
    assert list((tmp_path / "jigsaw").iterdir()) == []


def test_corrupt_image_is_skipped_and_counted(mini_sources, tmp_path):
    src = tmp_path / "coco"
    shutil.copytree(mini_sources["coco"], src)
    fractions = get_task("jigsaw").params["split_fractions"]
    owned = [p for p in sorted(src.glob("*2017/*.jpg")) if assign_split(p.stem, fractions, load_registry().defaults.seed) == "train"]
    for v in owned[:3]:
        v.write_bytes(v.read_bytes()[:200])  # truncated JPEG
    n = len(owned) - 3  # forces the builder to visit every owned image
    assert main(["jigsaw", "--split", "train", "--source-root", str(src), "--out",
                 str(tmp_path / "out"), "--n", str(n), "--no-progress"]) == 0
    m = read_manifest(split_dir(tmp_path / "out", "jigsaw", "train"))
    assert m["rejected"] == {"unreadable_image": 3}
    assert m["n"] == n


def test_exclude_refills_without_flagged_sources_and_keeps_balance(mini_sources, tmp_path):
    base = ["jigsaw", "--split", "train", "--source-root", str(mini_sources["coco"]),
            "--n", "6", "--no-progress"]
    assert main(base + ["--out", str(tmp_path / "a")]) == 0
    first = read_manifest(split_dir(tmp_path / "a", "jigsaw", "train"))
    from builders.io import read_split
    used = [r.source_dict["source_images"][0] for r in read_split(split_dir(tmp_path / "a", "jigsaw", "train"))]
    flagged = tmp_path / "flagged_sources.json"
    flagged.write_text(json.dumps({"jigsaw": {"source_images": used[:2], "examples": []}}))
    assert main(base + ["--out", str(tmp_path / "b"), "--exclude", str(flagged)]) == 0
    second = read_manifest(split_dir(tmp_path / "b", "jigsaw", "train"))
    rebuilt = [r.source_dict["source_images"][0] for r in read_split(split_dir(tmp_path / "b", "jigsaw", "train"))]
    assert second["n"] == 6 and not set(used[:2]) & set(rebuilt)
    assert set(used[2:]) <= set(rebuilt)  # everything else is still used
    assert second["rejected"]["excluded_source_image"] == 2
    counts = sorted(second["answer_counts"].values())
    assert counts == [3, 3] and sorted(first["answer_counts"].values()) == [3, 3]
