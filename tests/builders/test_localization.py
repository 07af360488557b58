"""Object Localization, checked against the miniature COCO annotation files read independently
(plain json + PIL polygon rasterisation, not pycocotools or the builder's reader)."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pytest
from PIL import Image, ImageDraw

from builders.build import InsufficientCandidates
from builders.imaging import decode_bytes, load_image
from builders.io import read_manifest, split_dir
from builders.registry import get_task
from builders.sources import SourceLayoutError
from builders.sources.coco import CocoAnnotationError
from builders.splitting import assign_split

from .conftest import build_split

SEED = 42


def _truth(coco_root):
    """Per annotation id: its row, its image row, folder, category name and the independent
    verdict of every filter."""
    p = get_task("localization").params
    out = {}
    for folder in ("train2017", "val2017"):
        doc = json.loads((coco_root / "annotations" / f"instances_{folder}.json").read_text())
        images = {im["id"]: im for im in doc["images"]}
        cats = {c["id"]: c["name"] for c in doc["categories"]}
        for ann in doc["annotations"]:
            im = images[ann["image_id"]]
            W, H = im["width"], im["height"]
            w, h = ann["bbox"][2:]
            fill = None
            if not ann["iscrowd"]:
                mask = Image.new("L", (W, H), 0)
                for poly in ann["segmentation"]:
                    ImageDraw.Draw(mask).polygon(list(zip(poly[::2], poly[1::2])), fill=1)
                fill = np.asarray(mask).sum() / (w * h)
            area_frac = w * h / (W * H)
            out[ann["id"]] = {
                "ann": ann, "image": im, "folder": folder, "category": cats[ann["category_id"]],
                "area_frac": area_frac, "fill": fill, "crowd": bool(ann["iscrowd"]),
                "area_ok": p["min_box_area_frac"] <= area_frac <= p["max_box_area_frac"],
                "fill_ok": fill is not None and fill >= p["min_mask_fill"],
            }
    return out


def _qualifies(t) -> bool:
    return not t["crowd"] and t["area_ok"] and t["fill_ok"]


def _owned_images(truth, split):
    fractions = get_task("localization").params["split_fractions"]
    return {t["image"]["id"] for t in truth.values()
            if assign_split(t["image"]["id"], fractions, SEED) == split}


@pytest.fixture(scope="module")
def truth(mini_sources):
    return _truth(mini_sources["coco"])


@pytest.fixture(scope="module")
def built(mini_sources, truth, tmp_path_factory):
    """Train and val built with every owned image (each miniature image has a qualifying object),
    so every image is visited and the rejection counts are exact."""
    out = tmp_path_factory.mktemp("loc")
    return out, {
        split: build_split("localization", split, mini_sources["coco"], out,
                           len(_owned_images(truth, split)), seed=SEED)
        for split in ("train", "val")
    }


def _records(built):
    return [r for rs in built[1].values() for r in rs]


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_gold_box_is_the_annotation_and_the_answer(built, truth):
    for r in _records(built):
        s = r.source_dict
        t = truth[s["annotation_id"]]
        x, y, w, h = t["ann"]["bbox"]
        assert s["gold_box"] == pytest.approx([x, y, x + w, y + h], abs=1e-9)
        assert s["image_id"] == t["ann"]["image_id"] == t["image"]["id"]
        assert s["source_images"] == [f"{t['folder']}/{t['image']['file_name']}"]
        assert s["image_size"] == [t["image"]["width"], t["image"]["height"]]
        letter = r.answer.strip("()")
        other = ({"A", "B"} - {letter}).pop()
        assert set(s["boxes"]) == {"A", "B"}
        assert s["boxes"][letter] == s["gold_box"]
        assert s["boxes"][other] == s["distractor_box"] != s["gold_box"]
        assert s["category"] == t["category"]
        assert f"the {t['category']}?" in r.question and f"the {t['category']}?" in r.prompt


def test_distractor_iou_in_range_and_inside_image(built):
    p = get_task("localization").params
    for r in _records(built):
        s = r.source_dict
        d, g = s["distractor_box"], s["gold_box"]
        v = _iou(d, g)
        assert p["iou_min"] <= v <= p["iou_max"]
        assert s["iou"] == pytest.approx(v, abs=1e-9)
        W, H = s["image_size"]
        assert 0 <= d[0] < d[2] <= W and 0 <= d[1] < d[3] <= H


def test_only_qualifying_instances_with_their_mask_fill(built, truth):
    used = {r.source_dict["annotation_id"]: r.source_dict for r in _records(built)}
    excluded = {k for k, t in truth.items() if t["crowd"] or not t["area_ok"] or not t["fill_ok"]}
    # the miniature really has crowd, tiny and thin low-fill instances, and none is used
    assert any(t["crowd"] for t in truth.values())
    assert any(not t["crowd"] and not t["area_ok"] for t in truth.values())
    assert any(not t["crowd"] and t["area_ok"] and not t["fill_ok"] for t in truth.values())
    assert not excluded & set(used)
    for ann_id, s in used.items():
        t = truth[ann_id]
        assert _qualifies(t)
        assert s["box_area_frac"] == pytest.approx(t["area_frac"], rel=1e-9)
        assert s["mask_fill"] == pytest.approx(t["fill"], abs=0.03)
    # multi-polygon objects are used with the fill of all their polygons together
    multi = [k for k in used if len(truth[k]["ann"]["segmentation"]) >= 2]
    assert multi
    for k in multi:
        ann = truth[k]["ann"]
        first_only = Image.new("L", (truth[k]["image"]["width"], truth[k]["image"]["height"]), 0)
        poly = ann["segmentation"][0]
        ImageDraw.Draw(first_only).polygon(list(zip(poly[::2], poly[1::2])), fill=1)
        # one polygon alone would fail the fill filter: the builder merged them
        assert np.asarray(first_only).sum() / (ann["bbox"][2] * ann["bbox"][3]) < 0.6
        assert used[k]["mask_fill"] >= 0.6


def test_one_example_per_image_and_each_image_in_one_split(built, truth):
    per_split = {split: [r.source_dict["image_id"] for r in rs] for split, rs in built[1].items()}
    for split, ids in per_split.items():
        assert len(ids) == len(set(ids)), f"an image gave two {split} examples"
        assert set(ids) == _owned_images(truth, split)
    assert not set(per_split["train"]) & set(per_split["val"])
    # some images have two qualifying objects, so the one-per-image rule is exercised
    qualifying = Counter(t["image"]["id"] for t in truth.values() if _qualifies(t))
    assert max(qualifying.values()) >= 2


def test_manifest_counts_rejections_by_filter(built, truth):
    out, _ = built
    for split in ("train", "val"):
        owned = _owned_images(truth, split)
        mine = [t for t in truth.values() if t["image"]["id"] in owned]
        qualifying = Counter(t["image"]["id"] for t in mine if _qualifies(t))
        expected = {
            "crowd": sum(t["crowd"] for t in mine),
            "box_area_out_of_range": sum(not t["crowd"] and not t["area_ok"] for t in mine),
            "mask_fill_below_min": sum(
                not t["crowd"] and t["area_ok"] and not t["fill_ok"] for t in mine),
            "over_examples_per_image": sum(c - 1 for c in qualifying.values()),
        }
        rejected = read_manifest(split_dir(out, "localization", split))["rejected"]
        assert {k: rejected.get(k, 0) for k in expected} == expected
        assert all(expected[k] > 0 for k in ("crowd", "box_area_out_of_range", "mask_fill_below_min"))


def _red(arr: np.ndarray) -> np.ndarray:
    a = arr.astype(np.int16)
    return (a[..., 0] > 180) & (a[..., 1] < 90) & (a[..., 2] < 90)


def _edge_hits(red: np.ndarray, box, reach: int) -> float:
    """Fraction of points along the four edges with a red pixel within `reach` px across the edge."""
    H, W = red.shape
    x1, y1, x2, y2 = box
    hits = []
    for f in np.linspace(0.15, 0.85, 15):
        x, y = x1 + f * (x2 - x1), y1 + f * (y2 - y1)
        for ex, ey, horizontal in ((x, y1, True), (x, y2, True), (x1, y, False), (x2, y, False)):
            cx, cy = min(int(ex), W - 1), min(int(ey), H - 1)
            if horizontal:
                window = red[max(0, cy - reach): cy + reach + 1, cx]
            else:
                window = red[cy, max(0, cx - reach): cx + reach + 1]
            hits.append(window.any())
    return float(np.mean(hits))


def test_boxes_are_drawn_in_red_at_original_resolution(built, mini_sources):
    for r in _records(built):
        s = r.source_dict
        original = load_image(mini_sources["coco"] / s["source_images"][0])
        rendered = decode_bytes(r.images[0])
        assert rendered.size == original.size == tuple(s["image_size"])
        reach = max(2, round(3 * max(rendered.size) / 500)) + 2
        drawn, raw = _red(np.asarray(rendered)), _red(np.asarray(original))
        for box in s["boxes"].values():
            assert _edge_hits(drawn, box, reach) >= 0.9
            assert _edge_hits(raw, box, reach) < 0.5
        # away from both boxes (labels sit inside them) the pixels are the original ones
        keep = np.ones(drawn.shape, dtype=bool)
        for x1, y1, x2, y2 in s["boxes"].values():
            keep[max(0, int(y1) - reach): int(y2) + reach + 1,
                 max(0, int(x1) - reach): int(x2) + reach + 1] = False
        diff = np.abs(np.asarray(rendered, np.int16) - np.asarray(original, np.int16))[keep]
        assert diff.mean() < 3


def test_bad_inputs_are_counted_or_named(mini_sources, truth, tmp_path):
    with pytest.raises(SourceLayoutError, match="train2017"):
        build_split("localization", "train", tmp_path / "nowhere", tmp_path / "o0", 1)
    root = shutil.copytree(mini_sources["coco"], tmp_path / "coco")
    owned = sorted(_owned_images(truth, "train"))
    single = [i for i in owned
              if sum(_qualifies(t) for t in truth.values() if t["image"]["id"] == i) == 1]
    t_img = next(t for t in truth.values() if t["image"]["id"] == single[0])
    (root / t_img["folder"] / t_img["image"]["file_name"]).write_bytes(b"not a jpeg")
    # a bbox with two numbers and a one-point-and-a-half polygon on two single-object images
    for image_id, field, bad in ((single[1], "bbox", [1.0, 2.0]),
                                 (single[2], "segmentation", [[1.0, 2.0, 3.0]])):
        t = next(t for t in truth.values() if t["image"]["id"] == image_id and _qualifies(t))
        ann_file = root / "annotations" / f"instances_{t['folder']}.json"
        doc = json.loads(ann_file.read_text())
        next(a for a in doc["annotations"] if a["id"] == t["ann"]["id"])[field] = bad
        ann_file.write_text(json.dumps(doc))
    # asking for every owned image forces a full pass, which stops and names each filter
    with pytest.raises(InsufficientCandidates) as err:
        build_split("localization", "train", root, tmp_path / "o1", len(owned))
    assert "unreadable_image: 1" in str(err.value)
    assert "malformed_annotation: 2" in str(err.value)
    assert f"only {len(owned) - 3} of {len(owned)}" in str(err.value)
    ann_file.write_text("{ not json")
    with pytest.raises(CocoAnnotationError, match=ann_file.name):
        build_split("localization", "train", root, tmp_path / "o2", 1)
