"""Functional Correspondence on the miniature FunKPoint, checked against its labels.csv.

Truth is read here with the csv module and PIL (keypoints by (image, action), real image sizes),
independently of the reader.
"""

from __future__ import annotations

import csv
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from builders.build import BuildRequest, run_build
from builders.imaging import decode_bytes
from builders.io import read_manifest, read_split, split_dir
from builders.miniature import funkpoint as mini_funkpoint
from builders.registry import get_task
from builders.sources import CsvFormatError, SourceLayoutError, funkpoint
from builders.tasks import functional_correspondence
from builders.tasks.functional_correspondence import split_images

from .conftest import build_split
from .test_semantic_correspondence import close, exhaust, marker_fraction

TASK = "functional_correspondence"
SPLITS = ("train", "val", "test")


# --- independent truth ---------------------------------------------------------------------------

def truth(root: Path) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(image_path, action) -> the five normalised keypoints, from labels.csv."""
    with (root / "labels.csv").open(newline="") as f:
        return {(row["image_path"], row["action"]):
                [(float(row[f"p{k}_x"]), float(row[f"p{k}_y"])) for k in range(1, 6)]
                for row in csv.DictReader(f)}


def pixel(root: Path, image: str, action: str, k: int, labels) -> tuple[float, float]:
    """Keypoint k (1-based) of (image, action) in pixels of the real image."""
    with Image.open(root / image) as im:
        W, H = im.size
    x, y = labels[(image, action)][k - 1]
    return x * W, y * H


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def root(mini_sources) -> Path:
    return mini_sources["funkpoint"]


@pytest.fixture(scope="module")
def labels(root):
    return truth(root)


@pytest.fixture(scope="module")
def records(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("funccorr")
    return [r for split, n in (("train", 16), ("val", 2), ("test", 2))
            for r in build_split(TASK, split, root, out, n)]


@pytest.fixture(scope="module")
def every_split(root):
    """Every example each split can make: split -> (examples, rejections)."""
    return {s: exhaust(functional_correspondence, TASK, root, s) for s in SPLITS}


# --- tests ---------------------------------------------------------------------------------------

def test_answer_is_keypoint_k_and_distractors_are_other_indices(records, root, labels):
    for r in records:
        s = r.source_dict
        action, (left, right) = s["action"], s["source_images"]
        k = s["ref_keypoint"]
        letter = r.answer[1]
        assert 1 <= k <= 5 and s["candidate_keypoints"][letter] == k
        assert close(s["ref"], pixel(root, left, action, k, labels))
        assert close(s["candidates"][letter], pixel(root, right, action, k, labels))
        held = s["candidate_keypoints"]
        assert sorted(held) == ["A", "B", "C", "D"] and len(set(held.values())) == 4
        for other, j in held.items():
            assert 1 <= j <= 5
            assert close(s["candidates"][other], pixel(root, right, action, j, labels))


def test_the_prompt_names_the_pairs_action(records, labels):
    template = get_task(TASK).prompt
    for r in records:
        s = r.source_dict
        action = s["action"]
        assert r.prompt == template.format(action=action)
        assert f'"{action}" with both objects' in r.prompt
        assert all((img, action) in labels for img in s["source_images"])
        assert s["left_image"] != s["right_image"]


def test_each_image_in_one_split_and_once_per_action(every_split):
    used = {s: {i for e in exs for i in e.source["source_images"]}
            for s, (exs, _) in every_split.items()}
    assert all(used.values())
    assert not (used["train"] & used["val"] or used["train"] & used["test"]
                or used["val"] & used["test"])
    for exs, _ in every_split.values():
        per_action = Counter((img, e.source["action"]) for e in exs
                             for img in e.source["source_images"])
        assert max(per_action.values()) == 1


def test_image_split_is_balanced_per_action(root, labels):
    fractions = get_task(TASK).params["split_fractions"]
    rows, _ = funkpoint.read_labels(root, 5)
    owner = split_images(rows, fractions, np.random.default_rng(0))
    assert owner == split_images(rows, fractions, np.random.default_rng(0))
    images = {img for img, _ in labels}
    assert set(owner) == images
    by_action = defaultdict(set)
    for img, action in labels:
        by_action[action].add(img)
    for imgs in by_action.values():
        got = Counter(owner[i] for i in imgs)
        for split, f in fractions.items():
            assert abs(got[split] - f * len(imgs)) <= 1
    got = Counter(owner.values())
    for split, f in fractions.items():
        assert abs(got[split] - f * len(images)) <= 2


def test_real_sizes_mixed_extensions_and_images_under_two_actions(every_split, root):
    examples = [e for exs, _ in every_split.values() for e in exs]
    for e in examples:
        sizes = [Image.open(root / img).size for img in e.source["source_images"]]
        assert [list(sz) for sz in sizes] == list(e.source["image_sizes"].values())
        assert [im.size for im in e.images] == sizes
    suffixes = {Path(img).suffix for e in examples for img in e.source["source_images"]}
    assert suffixes == {".jpg", ".JPEG", ".png"}
    actions = defaultdict(set)
    for e in examples:
        for img in e.source["source_images"]:
            actions[img].add(e.source["action"])
    assert max(len(a) for a in actions.values()) >= 2


def test_ref_and_candidates_are_drawn(records, root):
    for r in records:
        s = r.source_dict
        left, right = (decode_bytes(b) for b in r.images)
        assert marker_fraction(left, s["ref"]) >= 0.7
        assert marker_fraction(Image.open(root / s["source_images"][0]), s["ref"]) < 0.5
        for xy in s["candidates"].values():
            assert marker_fraction(right, xy) >= 0.4


def test_reader_goes_by_column_name_and_counts_bad_rows(root, labels, tmp_path):
    original, dropped = funkpoint.read_labels(root, 5)
    assert not dropped
    assert {(lab.image, lab.action): list(lab.keypoints) for lab in original} == labels
    with (root / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    # reversed columns plus an unknown one; two bad coordinates, an empty action, a repeated row
    columns = ["note", *reversed(list(rows[0]))]
    bad = [dict(rows[0], p2_x="abc"), dict(rows[1], p3_y="1.5"), dict(rows[2], action=""),
           dict(rows[3])]
    with (tmp_path / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows({**row, "note": "x"} for row in [*rows[4:], *bad[:3], *rows[:4], bad[3]])
    shuffled, counted = funkpoint.read_labels(tmp_path, 5)
    assert shuffled == original
    assert counted == {"label_row_bad_keypoint": 2, "label_row_missing_image_or_action": 1,
                       "label_row_duplicate": 1}


def test_bad_root_or_header_names_the_problem(tmp_path):
    with pytest.raises(SourceLayoutError, match="labels.csv"):
        funkpoint.find_root(tmp_path)
    (tmp_path / "labels.csv").write_text("p1_x,p1_y,image_path,action\n0.1,0.2,a.jpg,Pour\n")
    with pytest.raises(CsvFormatError, match="p2_x"):
        funkpoint.read_labels(funkpoint.find_root(tmp_path), 5)


# --- the paper's sizes and sampling ----------------------------------------------------------------

def test_real_size_release_builds_the_papers_val_and_test_sizes(tmp_path):
    """On a miniature of the real release (4,776 (image, action) rows, the 10 actions on their
    real object categories) the default build gives exactly the paper's 144 val and 146 test
    examples, from image-disjoint splits, with nothing filtered but odd images out."""
    root = mini_funkpoint.write_real_size(tmp_path / "src")
    with (root / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4776 and len({r["action"] for r in rows}) == 10
    sizes = get_task(TASK).sizes
    assert (sizes["val"], sizes["test"]) == (144, 146)
    labels, _ = funkpoint.read_labels(root, 5)
    owner = split_images(labels, get_task(TASK).params["split_fractions"],
                         np.random.default_rng(0))
    for split in ("val", "test"):
        per_action = Counter(lab.action for lab in labels if owner[lab.image] == split)
        assert sum(n // 2 for n in per_action.values()) >= sizes[split] + 60  # ample room
    used = {}
    for split in ("val", "test"):
        records = read_split(run_build(BuildRequest(TASK, split, tmp_path / "src",
                                                    tmp_path / "out", progress=False)))
        assert len(records) == sizes[split]
        used[split] = {i for r in records for i in r.source_dict["source_images"]}
        rejected = read_manifest(split_dir(tmp_path / "out", TASK, split))["rejected"]
        assert set(rejected) <= {"unpaired_image"}
    assert not used["val"] & used["test"]


def test_default_sampling_is_the_papers_and_the_spacing_filter_is_an_option(root, tmp_path):
    """A.7: k uniform in 1..5, distractors any 3 of the other 4; nothing is dropped for crowded
    keypoints. With every keypoint of every row at one spot, the default still makes every
    pair, with every k; the spacing option drops them all."""
    assert get_task(TASK).params["min_candidate_separation_frac"] == 0.0
    crowded = tmp_path / "FunKPoint"
    shutil.copytree(root, crowded)
    with (root / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for k in range(2, 6):
            row[f"p{k}_x"], row[f"p{k}_y"] = row["p1_x"], row["p1_y"]
    with (crowded / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    made, rejected = exhaust(functional_correspondence, TASK, crowded, "train")
    normal, _ = exhaust(functional_correspondence, TASK, root, "train")
    assert len(made) == len(normal) > 0 and "no_separated_distractors" not in rejected
    assert {e.source["ref_keypoint"] for e in made} == {1, 2, 3, 4, 5}
    filtered, rejected = exhaust(functional_correspondence, TASK, crowded, "train",
                                 min_candidate_separation_frac=0.04)
    assert not filtered and rejected["no_separated_distractors"] == len(normal)
