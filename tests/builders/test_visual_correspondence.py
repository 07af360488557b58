"""Visual Correspondence geometry and splits, checked against the miniature HPatches truth: the H
files read with np.loadtxt and the raw PPM pixels, independently of the builder and its reader."""

from __future__ import annotations

import functools
import itertools
import math
import shutil

import numpy as np
import pytest
from PIL import Image

from builders.drawing import MarkerStyle
from builders.imaging import decode_bytes
from builders.io import read_manifest, split_dir
from builders.registry import get_task
from builders.sources import SourceLayoutError, hpatches

from .conftest import build_split

TASK = "visual_correspondence"
# The first n examples of a split must come from n different (sequence, pair)s: the miniature's
# val and test splits have 2 sequences x 10 pairs each.
N = {"train": 40, "val": 20, "test": 20}


@pytest.fixture(scope="module")
def params():
    return get_task(TASK).params


@pytest.fixture(scope="module")
def root(mini_sources):
    return mini_sources["hpatches"]


@pytest.fixture(scope="module")
def splits(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("vc")
    return {s: build_split(TASK, s, root, out, n) for s, n in N.items()}


def _all(splits):
    return [r for rs in splits.values() for r in rs]


def _H(root, seq, j):
    return np.eye(3) if j == 1 else np.loadtxt(root / seq / f"H_1_{j}")


def _warp(H, pt):
    u, v, w = H @ np.array([pt[0], pt[1], 1.0])
    return np.array([u / w, v / w])


@functools.cache
def _raw(root, rel):
    with Image.open(root / rel) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64)


@functools.cache
def _zscored(root, rel):
    a = _raw(root, rel)
    return (a - a.mean(axis=(0, 1))) / a.std(axis=(0, 1))


def test_true_candidate_is_the_homography_image_of_ref(splits, root):
    for r in _all(splits):
        s = r.source_dict
        i, j = s["pair"]
        H_ij = _H(root, s["sequence"], j) @ np.linalg.inv(_H(root, s["sequence"], i))
        expected = _warp(H_ij, s["ref"])
        assert s["answer"] == r.answer.strip("()")
        assert np.linalg.norm(np.array(s["candidates"][s["answer"]]) - expected) <= 1.0
        # only the answer is the true point
        for letter, pt in s["candidates"].items():
            if letter != s["answer"]:
                assert np.linalg.norm(np.array(pt) - expected) > 1.0
        assert np.allclose(np.array(s["H_i_j"]) / s["H_i_j"][2][2], H_ij / H_ij[2, 2], atol=1e-6)
        assert s["source_images"] == [f"{s['sequence']}/{i}.ppm", f"{s['sequence']}/{j}.ppm"]


def test_colour_at_ref_matches_the_true_point_not_the_distractors(splits, root):
    """Pixel truth, independent of the H files: the raw colour at REF in image i is found at the
    true point of raw image j (each image z-scored per channel so brightness changes cancel)."""

    def at(img, pt):  # 3x3 mean around the nearest pixel
        x, y = round(pt[0]), round(pt[1])
        return img[y - 1 : y + 2, x - 1 : x + 2].mean(axis=(0, 1))

    d_true, d_other, wins = [], [], 0
    records = _all(splits)
    for r in records:
        s = r.source_dict
        img_i, img_j = (_zscored(root, rel) for rel in s["source_images"])
        ref = at(img_i, s["ref"])
        dist = {k: np.linalg.norm(at(img_j, pt) - ref) for k, pt in s["candidates"].items()}
        true = dist.pop(s["answer"])
        d_true.append(true)
        d_other.extend(dist.values())
        wins += true < min(dist.values())
    assert np.mean(d_true) < 0.5 * np.mean(d_other), (np.mean(d_true), np.mean(d_other))
    assert wins >= 0.8 * len(records)


def test_points_respect_margins_and_distractor_distances(splits, root, params):
    for r in _all(splits):
        s = r.source_dict
        (hi, wi, _), (hj, wj, _) = (_raw(root, rel).shape for rel in s["source_images"])
        assert s["image_sizes"] == {"source": [wi, hi], "target": [wj, hj]}
        mi, mj = params["border_margin_frac"] * min(wi, hi), params["border_margin_frac"] * min(wj, hj)
        x, y = s["ref"]
        assert mi <= x <= wi - 1 - mi and mi <= y <= hi - 1 - mi
        pts = s["candidates"]
        assert sorted(pts) == ["A", "B", "C", "D"]
        for x, y in pts.values():
            assert mj <= x <= wj - 1 - mj and mj <= y <= hj - 1 - mj
        min_d = params["distractor_min_dist_frac"] * min(wj, hj)
        for a, b in itertools.combinations(pts, 2):
            assert math.dist(pts[a], pts[b]) >= min_d, (a, b, s)


def test_refs_of_one_pair_are_separated(root, tmp_path, params):
    # the miniature's train split has 16 sequences x 10 pairs: examples past the 160th are the
    # second refs of pairs
    rs = build_split(TASK, "train", root, tmp_path, 180)
    by_pair: dict[tuple, list] = {}
    for r in rs:
        s = r.source_dict
        by_pair.setdefault((s["sequence"], *s["pair"]), []).append(s)
    assert sum(len(v) == 2 for v in by_pair.values()) == 20
    for group in by_pair.values():
        w, h = group[0]["image_sizes"]["source"]
        for a, b in itertools.combinations(group, 2):
            assert math.dist(a["ref"], b["ref"]) >= params["ref_min_separation_frac"] * min(w, h)


def test_sequence_level_split_with_both_kinds_everywhere(splits, root, tmp_path, params):
    owner: dict[str, str] = {}
    for split, rs in splits.items():
        seqs = {r.source_dict["sequence"] for r in rs}
        assert {q[0] for q in seqs} == {"v", "i"}, (split, seqs)
        for q in seqs:
            assert owner.setdefault(q, split) == split, f"{q} in {owner[q]} and {split}"
        for r in rs:
            i, j = r.source_dict["pair"]
            assert 1 <= i < j <= 6 and j - i >= params["min_pair_gap"]
    # the split does not depend on --n: a smaller train build draws from the same sequences
    small = build_split(TASK, "train", root, tmp_path, 5)
    assert {r.source_dict["sequence"] for r in small} <= {q for q, s in owner.items() if s == "train"}


def test_examples_are_spread_over_pairs(splits):
    for split, rs in splits.items():
        keys = [(r.source_dict["sequence"], *r.source_dict["pair"]) for r in rs]
        assert len(set(keys)) == len(keys), split


def test_images_are_rendered_at_original_size_with_markers(splits, root):
    sizes_differ = False
    for r in _all(splits):
        s = r.source_dict
        raws = [_raw(root, rel) for rel in s["source_images"]]
        rendered = [np.asarray(decode_bytes(b), dtype=np.float64) for b in r.images]
        marks = [{"REF": s["ref"]}, s["candidates"]]
        for raw, out, points in zip(raws, rendered, marks):
            assert raw.shape == out.shape
            radius = MarkerStyle.for_image((raw.shape[1], raw.shape[0])).radius
            for x, y in points.values():
                # the ring passes through (x + radius, y): red there after drawing
                cx = round(x + radius)
                px = out[round(y), cx - 1 : cx + 2]
                assert (px[:, 0].max() > 180) and (px[:, 1].min() < 90), (points, px)
        sizes_differ |= raws[0].shape != raws[1].shape
    assert sizes_differ, "the miniature's varying-size sequence was not exercised"


def test_reader_parses_h_files_like_loadtxt(root, tmp_path):
    for path in sorted(root.glob("*/H_1_*")):
        assert np.array_equal(hpatches.read_homography(path), np.loadtxt(path))
    odd = tmp_path / "H_1_2"
    odd.write_text("\t 1.0e+00 0 3.5E1\n0  1 -2\n\n1e-4 0.0 1 \n")
    assert np.array_equal(hpatches.read_homography(odd), np.loadtxt(odd))


@pytest.mark.parametrize("text", ["1 0 0\n0 1 0\n0 0\n", "1 0 0\n0 x 0\n0 0 1\n",
                                  "0 0 0\n0 0 0\n0 0 0\n", "1 0 nan\n0 1 0\n0 0 1\n"])
def test_malformed_h_file_is_a_clear_error_naming_the_file(tmp_path, text):
    bad = tmp_path / "H_1_4"
    bad.write_text(text)
    with pytest.raises(hpatches.HomographyFileError, match="H_1_4"):
        hpatches.read_homography(bad)


def test_malformed_h_file_stops_the_build_before_writing(root, tmp_path):
    copy = shutil.copytree(root, tmp_path / hpatches.TOP)
    for seq in copy.iterdir():
        (seq / "H_1_4").write_text("1 0 0\n0 1 0\n")
    with pytest.raises(hpatches.HomographyFileError, match="H_1_4"):
        build_split(TASK, "train", copy, tmp_path / "out", 4)
    assert not split_dir(tmp_path / "out", TASK, "train").exists()


def test_unreadable_image_is_counted_not_fatal(root, tmp_path):
    copy = shutil.copytree(root, tmp_path / hpatches.TOP)
    for seq in copy.iterdir():
        (seq / "3.ppm").write_bytes(b"P6\n160 120\n255\n\x00\x01")  # truncated
    rs = build_split(TASK, "train", copy, tmp_path / "out", 20)
    assert all(3 not in r.source_dict["pair"] for r in rs)
    assert read_manifest(split_dir(tmp_path / "out", TASK, "train"))["rejected"]["unreadable_image"] > 0


def test_find_root_accepts_the_folder_or_its_parent(root, tmp_path):
    assert hpatches.find_root(root) == root
    assert hpatches.find_root(root.parent) == root
    with pytest.raises(SourceLayoutError, match="v_"):
        hpatches.find_root(tmp_path)
