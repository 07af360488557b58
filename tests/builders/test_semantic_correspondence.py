"""Semantic Correspondence on the miniature SPair-71k, checked against its annotation files.

Truth is read here, independently of the reader: keypoint positions from the per-image
`ImageAnnotation` files (which the builder never opens), validity from the pair files and the
decoded image sizes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from builders.build import BuildContext
from builders.drawing import MarkerStyle
from builders.imaging import decode_bytes
from builders.registry import get_task
from builders.sources import SourceLayoutError, spair
from builders.tasks import semantic_correspondence

from .conftest import build_split

TASK = "semantic_correspondence"
ALL_TRAIN = {"split_fractions": {"train": 1.0, "val": 0.0}}


def exhaust(module, task: str, root: Path, split: str, seed: int = 42, **params):
    """Every example a builder can make for a split (nothing encoded), and its rejections."""
    spec = get_task(task)
    spec = dataclasses.replace(spec, params={**spec.params, **params})
    ctx = BuildContext(spec, split, root, seed)
    return list(module.build(ctx)), ctx.rejections


def marker_fraction(img: Image.Image, xy) -> float:
    """Share of directions from `xy` in which the image shows a `draw_points` marker: red on the
    ring (radius r - width .. r) and the ring's white halo just inside it (sizes as `MarkerStyle`
    scales them for this image). A red patch of the photo alone does not pass: it has no halo."""
    style = MarkerStyle.for_image(img.size)
    r, w = style.radius, style.width
    a = np.asarray(img.convert("RGB"), dtype=np.int32)

    def pixels(radii, t):
        for radius in radii:
            x, y = round(xy[0] + radius * np.cos(t)), round(xy[1] + radius * np.sin(t))
            if 0 <= x < img.width and 0 <= y < img.height:
                yield a[y, x]

    hits = []
    for t in np.linspace(0, 2 * np.pi, 16, endpoint=False):
        ring = pixels(np.arange(r - w, r + 0.5, 0.5), t)
        inside = pixels((r - w - 2, r - w - 1.5, r - w - 1), t)
        red = any(R > 150 and G < 100 and B < 100 for R, G, B in ring)
        halo = any(p.min() > 190 and p.max() - p.min() < 40 for p in inside)
        hits.append(red and halo)
    return float(np.mean(hits))


def close(p, q, tol: float = 1.0) -> bool:
    return math.hypot(p[0] - q[0], p[1] - q[1]) <= tol


# --- independent truth ---------------------------------------------------------------------------

def image_kps(root: Path, rel: str) -> dict:
    _, category, name = rel.split("/")
    path = root / "ImageAnnotation" / category / (Path(name).stem + ".json")
    return json.loads(path.read_text())["kps"]


def layout(root: Path, split: str) -> list[str]:
    return (root / "Layout" / "large" / f"{split}.txt").read_text().split()


def pair_doc(root: Path, line: str) -> dict:
    return json.loads((root / "PairAnnotation" / "trn" / f"{line}.json").read_text())


def image_size(root: Path, category: str, stem: str) -> tuple[int, int]:
    with Image.open(root / "JPEGImages" / category / f"{stem}.jpg") as im:
        return im.size


def valid_ids(root: Path, line: str) -> list[int]:
    """kps ids whose source and target points are finite, non-negative and inside the image."""
    doc = pair_doc(root, line)
    _, src, rest = line.split("-")
    trg, category = rest.split(":")
    sizes = image_size(root, category, src), image_size(root, category, trg)

    def ok(pt, size):
        return (pt is not None and None not in pt and all(math.isfinite(v) for v in pt)
                and 0 <= pt[0] < size[0] and 0 <= pt[1] < size[1])

    return [int(k) for s, t, k in zip(doc["src_kps"], doc["trg_kps"], doc["kps_ids"])
            if ok(s, sizes[0]) and ok(t, sizes[1])]


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def root(mini_sources) -> Path:
    return mini_sources["spair"]


@pytest.fixture(scope="module")
def records(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("semcorr")
    return build_split(TASK, "train", root, out, 16) + build_split(TASK, "val", root, out, 2)


@pytest.fixture(scope="module")
def all_pairs(root):
    """Every trn pair as one split: examples by pair line, and the rejections."""
    examples, rejected = exhaust(semantic_correspondence, TASK, root, "train", **ALL_TRAIN)
    return {e.source["pair"]: e for e in examples}, rejected


# --- tests ---------------------------------------------------------------------------------------

def test_answer_is_the_true_keypoint_and_distractors_are_other_keypoints(records, root):
    for r in records:
        s = r.source_dict
        src_rel, trg_rel = s["source_images"]
        src_kps, trg_kps = image_kps(root, src_rel), image_kps(root, trg_rel)
        letter = r.answer[1]
        true_id = s["ref_keypoint"]
        assert s["candidate_keypoints"][letter] == true_id
        assert close(s["ref"], src_kps[str(true_id)])
        assert close(s["candidates"][letter], trg_kps[str(true_id)])
        held = list(s["candidate_keypoints"].values())
        assert sorted(s["candidate_keypoints"]) == ["A", "B", "C", "D"]
        assert len(set(held)) == 4
        for other, kid in s["candidate_keypoints"].items():
            assert trg_kps[str(kid)] is not None  # an annotated target keypoint
            assert close(s["candidates"][other], trg_kps[str(kid)])
        # every candidate is a valid correspondence of this very trn pair
        assert s["pair"] in layout(root, "trn")
        assert set(held) <= set(valid_ids(root, s["pair"]))


def test_pairs_with_fewer_than_four_valid_keypoints_are_filtered(all_pairs, root):
    examples, rejected = all_pairs
    counts = {line: len(valid_ids(root, line)) for line in layout(root, "trn")}
    few = {line for line, n in counts.items() if n < get_task(TASK).params["min_valid_keypoints"]}
    assert 3 in {counts[line] for line in few}  # the miniature's 3-valid-keypoint pair
    assert set(examples) == set(counts) - few
    assert rejected["too_few_valid_keypoints"] == len(few)
    assert not set(examples) & (set(layout(root, "val")) | set(layout(root, "test")))


def test_invalid_listed_entries_never_become_options(all_pairs, root):
    examples, _ = all_pairs
    # pairs listing entries that are invalid (negative, null, outside the image) and exactly 4
    # valid ones: their 4 options must be exactly the 4 valid keypoints
    tight = [line for line, e in examples.items()
             if len(valid_ids(root, line)) == 4 < len(pair_doc(root, line)["kps_ids"])]
    assert tight
    for line in tight:
        s = examples[line].source
        assert sorted(s["candidate_keypoints"].values()) == sorted(valid_ids(root, line))


def test_kps_ids_as_strings_and_ints_are_both_read(all_pairs, root):
    examples, _ = all_pairs
    kinds = set()
    for line, e in examples.items():
        raw = pair_doc(root, line)["kps_ids"]
        kinds |= {type(v) for v in raw}
        assert set(e.source["candidate_keypoints"].values()) <= {int(v) for v in raw}
    assert kinds == {str, int}


def test_images_not_pairs_are_split(root):
    (train, rej_train), (val, rej_val) = (exhaust(semantic_correspondence, TASK, root, s)
                                          for s in ("train", "val"))
    images = [{i for e in exs for i in e.source["source_images"]} for exs in (train, val)]
    assert train and val and not images[0] & images[1]
    # a pair whose images fall in different splits is used by neither and counted by both
    crossing = rej_train["pair_crosses_splits"]
    assert crossing > 0 and rej_val["pair_crosses_splits"] == crossing
    too_few = rej_train["too_few_valid_keypoints"] + rej_val["too_few_valid_keypoints"]
    assert len(train) + len(val) + crossing + too_few == len(layout(root, "trn"))


def test_markers_are_drawn_at_original_resolution(records, root):
    for r in records:
        s = r.source_dict
        src, trg = (decode_bytes(b) for b in r.images)
        originals = [Image.open(root / rel) for rel in s["source_images"]]
        assert [src.size, trg.size] == [im.size for im in originals]
        assert marker_fraction(src, s["ref"]) >= 0.7
        assert marker_fraction(originals[0], s["ref"]) < 0.5
        # a neighbouring candidate's letter may cover part of a ring (draw_points places every
        # label up-right of its ring without avoiding the other rings)
        for xy in s["candidates"].values():
            assert marker_fraction(trg, xy) >= 0.4


def test_bad_input_is_counted_or_named(root, tmp_path):
    with pytest.raises(SourceLayoutError, match="Layout"):
        spair.find_root(tmp_path)
    copy = shutil.copytree(root, tmp_path / "SPair-71k")
    lines = layout(copy, "trn")
    (copy / "PairAnnotation" / "trn" / f"{lines[5]}.json").write_text("{not json")
    (copy / "PairAnnotation" / "trn" / f"{lines[6]}.json").unlink()
    gone = f"JPEGImages/{lines[7].split(':')[1]}/{lines[7].split('-')[1]}.jpg"
    (copy / gone).unlink()
    with (copy / "Layout" / "large" / "trn.txt").open("a") as f:
        f.write("not-a-pair-line\n")
    examples, rejected = exhaust(semantic_correspondence, TASK, copy, "train", **ALL_TRAIN)
    assert rejected["malformed_pair_annotation"] == 1
    assert rejected["missing_pair_annotation"] == 1
    assert rejected["malformed_layout_line"] == 1
    assert rejected["missing_image"] >= 1
    assert all(gone not in e.source["source_images"] for e in examples)
    (copy / "Layout" / "large" / "trn.txt").unlink()
    with pytest.raises(SourceLayoutError, match="trn.txt"):
        exhaust(semantic_correspondence, TASK, copy, "train")
