"""Visual Similarity examples checked against the miniature NIGHTS data.csv, read here with the
csv module, and against the PNGs the examples were made from."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from builders.build import InsufficientCandidates
from builders.imaging import decode_bytes, load_image
from builders.io import read_manifest, split_dir
from builders.registry import get_task

from .conftest import build_split

PARAMS = get_task("visual_similarity").params
SPLITS = ("train", "val")


def _rows(root: Path) -> list[dict[str, str]]:
    with (root / "data.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _keep(row: dict[str, str]) -> bool:
    return float(row["votes"]) >= PARAMS["min_votes"] and float(row["right_vote"]) != 0.5


def _truth(root: Path) -> dict[str, list[dict[str, str]]]:
    """Per our split, the csv rows that must become examples (all of them are built)."""
    rows = _rows(root)
    wanted = PARAMS["source_splits"]
    return {s: [r for r in rows if r["split"] == wanted[s] and _keep(r)] for s in SPLITS}


@pytest.fixture(scope="module")
def built(mini_sources, tmp_path_factory):
    root = mini_sources["nights"]
    out = tmp_path_factory.mktemp("vis")
    truth = _truth(root)
    records = {s: build_split("visual_similarity", s, root, out, len(truth[s])) for s in SPLITS}
    return out, records


def _px(data_or_path) -> np.ndarray:
    img = load_image(data_or_path) if isinstance(data_or_path, Path) else decode_bytes(data_or_path)
    return np.asarray(img, dtype=np.float64)


def test_answers_follow_the_votes(built, mini_sources):
    root = mini_sources["nights"]
    rows = {r["id"]: r for r in _rows(root)}
    for split, records in built[1].items():
        for r in records:
            s = r.source_dict
            row = rows[s["triplet_id"]]
            assert row["split"] == PARAMS["source_splits"][split]
            assert (s["ref_path"], s["left_path"], s["right_path"]) == (
                row["ref_path"], row["left_path"], row["right_path"])
            closer, farther = ("right_path", "left_path") if float(row["right_vote"]) > 0.5 else (
                "left_path", "right_path")
            ref, a, b = (_px(d) for d in r.images)
            answer, other = (a, b) if r.answer == "(A)" else (b, a)
            # image_1 is the reference file, the answer the closer candidate's file, the other
            # option the farther one's: each rendered image matches its file best of the three
            files = {k: _px(root / row[k]) for k in ("ref_path", closer, farther)}
            for img, want in ((ref, "ref_path"), (answer, closer), (other, farther)):
                err = {k: np.abs(img - f).mean() for k, f in files.items()}
                assert min(err, key=err.get) == want and err[want] < 4
            # and the miniature made that candidate the nearer one in pixels too
            assert np.abs(answer - ref).mean() < np.abs(other - ref).mean()
            assert s["options"][r.answer[1]] == closer.removesuffix("_path")
            assert (s["left_vote"], s["right_vote"], s["votes"]) == (
                float(row["left_vote"]), float(row["right_vote"]), float(row["votes"]))


def test_vote_filter_drops_exactly_the_low_vote_and_tied_rows(built, mini_sources):
    root = mini_sources["nights"]
    out, records = built
    truth = _truth(root)
    rows = _rows(root)
    for split in SPLITS:
        mine = [r for r in rows if r["split"] == PARAMS["source_splits"][split]]
        low = sum(float(r["votes"]) < PARAMS["min_votes"] for r in mine)
        tied = sum(float(r["votes"]) >= PARAMS["min_votes"] and float(r["right_vote"]) == 0.5
                   for r in mine)
        assert low >= 1  # the miniature exercises the filter in every split
        rejected = read_manifest(split_dir(out, "visual_similarity", split))["rejected"]
        assert rejected.get("too_few_votes", 0) == low
        assert rejected.get("tied_votes", 0) == tied
        assert sorted(r.source_dict["triplet_id"] for r in records[split]) == sorted(
            r["id"] for r in truth[split])
    with pytest.raises(InsufficientCandidates):
        build_split("visual_similarity", "train", root, out / "more", len(truth["train"]) + 1)


def test_both_candidate_orders_occur(built):
    for split in SPLITS:
        firsts = {r.source_dict["options"]["A"] for r in built[1][split]}
        assert firsts == {"left", "right"}, split


def test_no_triplet_or_image_in_two_splits(built):
    ids = {s: {r.source_dict["triplet_id"] for r in built[1][s]} for s in SPLITS}
    images = {s: {p for r in built[1][s] for p in r.source_dict["source_images"]} for s in SPLITS}
    assert not ids["train"] & ids["val"]
    assert not images["train"] & images["val"]


def _rewrite_csv(src: Path, dst: Path, columns: list[str]) -> None:
    rows = _rows(src)
    with (dst / "data.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", restval="x")
        w.writeheader()
        w.writerows(rows)


def test_missing_column_is_an_error_naming_file_and_column(mini_sources, tmp_path):
    src = mini_sources["nights"]
    dst = tmp_path / "nights"
    dst.mkdir()
    header = list(_rows(src)[0])
    _rewrite_csv(src, dst, [c for c in header if c != "right_vote"])
    with pytest.raises(ValueError) as err:
        build_split("visual_similarity", "train", dst, tmp_path / "out", 2)
    assert str(dst / "data.csv") in str(err.value) and "right_vote" in str(err.value)


def test_columns_are_read_by_name(built, mini_sources, tmp_path):
    src = mini_sources["nights"]
    dst = tmp_path / "nights"
    shutil.copytree(src, dst)
    header = list(_rows(src)[0])
    _rewrite_csv(src, dst, ["notes", *reversed(header)])  # reordered, plus an extra column
    again = build_split("visual_similarity", "val", dst, tmp_path / "out", len(built[1]["val"]))
    assert [(r.answer, r.source, r.images) for r in again] == [
        (r.answer, r.source, r.images) for r in built[1]["val"]]


def test_unreadable_image_is_counted_not_fatal(mini_sources, tmp_path):
    src = mini_sources["nights"]
    dst = tmp_path / "nights"
    shutil.copytree(src, dst)
    val = _truth(src)["val"]
    broken = val[0]
    (dst / broken["left_path"]).write_bytes(b"not a png")
    records = build_split("visual_similarity", "val", dst, tmp_path / "out", len(val) - 1)
    assert broken["id"] not in {r.source_dict["triplet_id"] for r in records}
    assert read_manifest(split_dir(tmp_path / "out", "visual_similarity", "val"))["rejected"][
        "unreadable_image"] == 1
