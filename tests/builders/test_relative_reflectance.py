"""Relative Reflectance labels, class mix, scene rules and geometry, checked against the miniature
MID's albedo files (read here with OpenEXR / PIL, independently of the reader) and its known region
luminances."""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections import Counter

import numpy as np
import OpenEXR
import pytest
from PIL import Image

from builders.build import BuildRequest, run_build
from builders.drawing import MarkerStyle
from builders.imaging import decode_bytes
from builders.io import read_manifest, read_split, split_dir
from builders.miniature import mid as mini
from builders.registry import load_registry
from builders.sources import SourceLayoutError
from builders.sources import mid as reader
from builders.splitting import assign_split

from .conftest import build_split

TASK = "relative_reflectance"
PARAMS = load_registry().resolve(TASK).params
SEED = load_registry().defaults.seed  # the fixtures' builds use it
N_TRAIN, N_VAL = 40, 20


@pytest.fixture(scope="module")
def built(mini_sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("rr")
    root = mini_sources["mid"]
    return out, {
        "train": build_split(TASK, "train", root, out, N_TRAIN),
        "val": build_split(TASK, "val", root, out, N_VAL),
    }


@pytest.fixture(scope="module")
def built_srgb_wide(mini_sources, tmp_path_factory):
    """Train built with PNG albedo read as sRGB and 5x larger disks (which straddle regions)."""
    reg = load_registry()
    spec = reg.resolve(TASK)
    params = {**spec.params, "albedo_png_is_srgb": True, "disk_radius_frac": 0.05}
    spec = dataclasses.replace(spec, params=params)
    reg = dataclasses.replace(reg, tasks={**reg.tasks, TASK: spec})
    out = tmp_path_factory.mktemp("rr_srgb")
    req = BuildRequest(TASK, "train", mini_sources["mid"], out, n=24, progress=False)
    path = run_build(req, reg)
    return params, read_split(path)


def _srgb_to_linear(v):
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _albedo_rgb(path, png_is_srgb):
    """The albedo file as linear float64 RGB, read without the builder's reader."""
    if path.suffix == ".exr":
        return np.asarray(OpenEXR.File(str(path)).channels()["RGB"].pixels, dtype=np.float64)
    v = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
    return _srgb_to_linear(v) if png_is_srgb else v


def _luminance_at_image_size(src, root, params):
    rgb = _albedo_rgb(root / src["albedo"], params["albedo_png_is_srgb"])
    y = rgb @ np.asarray(params["luminance_weights"], dtype=np.float64)
    (w, h), (aw, ah) = src["image_size"], src["albedo_size"]
    assert y.shape == (ah, aw)
    if (aw, ah) != (w, h):
        # The miniature's larger albedo is an integer multiple: resizing is block averaging.
        k = aw // w
        assert (aw, ah) == (k * w, k * h)
        y = y.reshape(h, k, w, k).mean(axis=(1, 3))
    return y


def _disk(xy, radius, size):
    w, h = size
    rows, cols = np.mgrid[0:h, 0:w]
    inside = (cols - xy[0]) ** 2 + (rows - xy[1]) ** 2 <= radius**2
    return cols[inside], rows[inside]


def _expected_label(y_a, y_b, params):
    rel = abs(y_a - y_b) / max(y_a, y_b, params["rel_epsilon"])
    return rel, "(C)" if rel <= params["same_threshold"] else ("(A)" if y_a < y_b else "(B)")


def _check_labels(records, root, params):
    """Every answer recomputed from the albedo file; returns how many examples had both disks
    inside one known region (where Y must equal the miniature's region luminance)."""
    known = 0
    for r in records:
        s = r.source_dict
        y = _luminance_at_image_size(s, root, params)
        w, h = s["image_size"]
        radius = max(params["disk_radius_frac"] * min(w, h), params["min_disk_radius_px"])
        assert s["disk_radius_px"] == pytest.approx(radius)
        ys, truths = {}, {}
        for letter in "AB":
            cols, rows = _disk(s["points"][letter], radius, (w, h))
            ys[letter] = y[rows, cols].mean()
            assert s[f"Y_{letter}"] == pytest.approx(ys[letter], rel=1e-5, abs=1e-7)
            regions = set(zip(*mini.region_of(cols, rows, (w, h))))
            if len(regions) == 1 and not params["albedo_png_is_srgb"]:
                truths[letter] = mini.region_luminance(s["scene"])[regions.pop()]
                assert ys[letter] == pytest.approx(truths[letter], rel=1e-5)
            # the same point on the albedo's own grid (pixel centres scaled)
            aw, ah = s["albedo_size"]
            x_img, y_img = s["points"][letter]
            assert s["albedo_points"][letter] == pytest.approx(
                [(x_img + 0.5) * aw / w - 0.5, (y_img + 0.5) * ah / h - 0.5])
        rel, label = _expected_label(ys["A"], ys["B"], params)
        assert s["rel"] == pytest.approx(rel, rel=1e-4, abs=1e-7)
        assert r.answer == label, (s["scene"], s["direction"], rel)
        if len(truths) == 2:
            known += 1
            assert r.answer == _expected_label(truths["A"], truths["B"], params)[1]
    return known


def test_labels_agree_with_the_albedo_files(built, mini_sources):
    _, records = built
    known = sum(_check_labels(records[split], mini_sources["mid"], PARAMS) for split in records)
    # most 1-3 px disks sit inside one region: the known luminances really were checked
    assert known >= (N_TRAIN + N_VAL) // 2


def test_png_albedo_read_as_srgb_and_wide_disks(built_srgb_wide, mini_sources):
    params, records = built_srgb_wide
    _check_labels(records, mini_sources["mid"], params)
    assert {r.source_dict["disk_radius_px"] for r in records} == {5.0}
    png = [r for r in records if r.source_dict["albedo"].endswith(".png")]
    assert png and all(r.source_dict["albedo_transfer"] == "srgb" for r in png)
    # a disk well inside one region of a PNG scene has the sRGB-decoded region luminance,
    # not the linear one
    checked = 0
    for r in png:
        s = r.source_dict
        for letter in "AB":
            cols, rows = _disk(s["points"][letter], 5.0, s["image_size"])
            regions = set(zip(*mini.region_of(cols, rows, s["image_size"])))
            if len(regions) == 1:
                region = regions.pop()
                colour = mini.stored_colours(s["scene"])[region]
                as_srgb = _srgb_to_linear(colour) @ mini.LUMA
                assert s[f"Y_{letter}"] == pytest.approx(as_srgb, rel=1e-5)
                assert s[f"Y_{letter}"] != pytest.approx(colour @ mini.LUMA, rel=1e-2)
                checked += 1
    assert checked


def test_about_the_same_is_a_quarter(built):
    _, records = built
    block = PARAMS["schedule_block"]
    n_same = round(PARAMS["same_fraction"] * block)
    # Targets come in shuffled blocks of `block` holding exactly n_same C's and every yielded
    # example's class equals its target, so a build of whole blocks (40 = 5 x 8) has exactly a
    # quarter C and A/B balanced; no sampling tolerance is needed.
    assert N_TRAIN % block == 0
    counts = Counter(r.answer for r in records["train"])
    assert counts["(C)"] == N_TRAIN * n_same // block == N_TRAIN // 4
    assert counts["(A)"] == counts["(B)"] == (N_TRAIN - counts["(C)"]) // 2
    # A partial block (20 = 2 x 8 + 4) can be off by at most one block's C's.
    val = Counter(r.answer for r in records["val"])
    assert abs(val["(C)"] - PARAMS["same_fraction"] * N_VAL) <= n_same
    assert abs(val["(A)"] - val["(B)"]) <= (block - n_same) // 2 + 1


def test_test_scenes_and_scenes_without_albedo(built, mini_sources):
    out, records = built
    prefix = PARAMS["test_scene_prefix"]
    test_scenes = [n for n in mini.SCENES if n.startswith(prefix)]
    no_albedo = [n for n in mini.SCENES if mini.SCENES[n][1] is None]
    assert test_scenes and no_albedo
    for split, rs in records.items():
        for r in rs:
            s = r.source_dict
            assert not s["scene"].startswith(prefix) and s["scene"] not in no_albedo
            assert prefix not in r.source
        m = read_manifest(split_dir(out, TASK, split))
        assert m["rejected"]["test_scene"] == len(test_scenes)  # once per scene, not per image
        owned = [n for n in no_albedo if assign_split(n, PARAMS["split_fractions"], SEED) == split]
        assert m["rejected"].get("no_albedo", 0) == len(owned)
    assert any(read_manifest(split_dir(out, TASK, s))["rejected"].get("no_albedo") for s in records)


def test_each_scene_in_one_split(built):
    _, records = built
    scenes = {split: {r.source_dict["scene"] for r in rs} for split, rs in records.items()}
    assert scenes["train"] and scenes["val"] and not scenes["train"] & scenes["val"]
    for split, names in scenes.items():
        assert all(assign_split(n, PARAMS["split_fractions"], SEED) == split for n in names)
    # several scenes and directions really are used, one example per (scene, direction)
    keys = [(r.source_dict["scene"], r.source_dict["direction"]) for r in records["train"]]
    assert len(set(keys)) == len(keys) and len(scenes["train"]) >= 3
    albedos = {split: {r.source_dict["albedo"] for r in rs} for split, rs in records.items()}
    assert not albedos["train"] & albedos["val"]


def test_points_are_separated_inside_margins_and_drawn(built):
    _, records = built
    for r in [*records["train"], *records["val"]]:
        s = r.source_dict
        w, h = s["image_size"]
        short = min(w, h)
        margin = PARAMS["border_margin_frac"] * short
        (xa, ya), (xb, yb) = s["points"]["A"], s["points"]["B"]
        assert math.hypot(xa - xb, ya - yb) >= PARAMS["min_separation_frac"] * short
        for x, y in ((xa, ya), (xb, yb)):
            assert margin <= x <= w - 1 - margin and margin <= y <= h - 1 - margin
        img = np.asarray(decode_bytes(r.images[0]), dtype=np.int16)
        assert img.shape == (h, w, 3)
        ring = MarkerStyle.for_image((w, h))
        for x, y in ((xa, ya), (xb, yb)):
            # a red ring is drawn around each point (rendered pixel coordinates)
            d = ring.radius - ring.width / 2
            compass = ((d, 0), (-d, 0), (0, d), (0, -d))
            samples = [img[round(y + dy), round(x + dx)] for dx, dy in compass]
            assert sum(int(p[0]) > 170 and int(p[1]) < 90 and int(p[2]) < 90 for p in samples) >= 2


def test_reader_finds_scenes_and_their_albedo(mini_sources):
    root = mini_sources["mid"]
    scenes = reader.list_scenes(root, PARAMS["mip"])
    assert [s.name for s in scenes] == sorted(mini.SCENES)
    for s in scenes:
        folder, albedo = mini.SCENES[s.name]
        assert s.folder == root / folder
        if albedo is None:
            assert s.albedo is None
        else:
            kind, where, _ = albedo
            # e.g. fixture_scene3's albedo lies in the sibling EXR tree
            assert s.albedo == root / where / f"albedo.{kind}"
    with pytest.raises(SourceLayoutError, match="dir_0_mip2.jpg"):
        reader.list_scenes(root / "fixture_scene1" / "probes", 2)


def test_albedo_decoding_and_the_srgb_flag(tmp_path):
    # 8-bit PNG: linear = v / 255 with the flag off; the sRGB curve with it on; RGB order kept
    px = np.array([[[255, 0, 0], [128, 128, 128], [10, 10, 10], [0, 64, 255]]], dtype=np.uint8)
    Image.fromarray(px).save(tmp_path / "albedo.png")
    linear = reader.read_albedo(tmp_path / "albedo.png", png_is_srgb=False)
    srgb = reader.read_albedo(tmp_path / "albedo.png", png_is_srgb=True)
    assert linear.dtype == np.float32 and linear.shape == (1, 4, 3)
    np.testing.assert_allclose(linear, px / 255.0, rtol=1e-6)
    np.testing.assert_allclose(srgb, _srgb_to_linear(px / 255.0), rtol=1e-5)
    # reference values of the sRGB transfer function (IEC 61966-2-1)
    assert srgb[0, 1, 0] == pytest.approx(0.2158605, rel=1e-5)  # 128 -> 0.216
    assert srgb[0, 2, 0] == pytest.approx(10 / 255 / 12.92, rel=1e-5)  # linear toe
    assert srgb[0, 0].tolist() == [1.0, 0.0, 0.0]
    # the flag darkens mid-greys: luminance of grey 128 drops from 0.502 to 0.216
    w = np.asarray(PARAMS["luminance_weights"], dtype=np.float32)
    assert linear[0, 1] @ w == pytest.approx(128 / 255, rel=1e-5)
    assert srgb[0, 1] @ w == pytest.approx(0.2158605, rel=1e-5)
    # EXR is linear float: read as written, whatever the flag; non-finite values become 0
    rgb = np.array([[[0.1, 0.5, 2.0], [np.nan, 0.25, -1.0]]], dtype=np.float32)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, {"RGB": rgb}).write(str(tmp_path / "albedo.exr"))
    for flag in (False, True):
        got = reader.read_albedo(tmp_path / "albedo.exr", png_is_srgb=flag)
        np.testing.assert_array_equal(got, np.array([[[0.1, 0.5, 2.0], [0, 0.25, 0]]], np.float32))


def test_midintrinsics_albedo_is_linear_by_default(tmp_path):
    """Paper A.8 measures luminance on linear albedo. MIDIntrinsics releases linear albedo: its
    `albedo.exr` is float linear, and `generate_albedo.py --png` writes the same array divided by
    its max as 8 bits with no transfer curve (chrislib's np_to_pil: (x * 255).astype(uint8)). So
    by default both files give the same relative luminance difference, the EXR's; decoding the
    PNG as sRGB (the option) would not."""
    assert PARAMS["albedo_png_is_srgb"] is False
    w = np.asarray(PARAMS["luminance_weights"], dtype=np.float64)
    linear = np.array([[[0.30, 0.25, 0.20], [0.60, 0.50, 0.40]]], dtype=np.float32)  # Y ratio 0.5
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, {"RGB": linear}).write(str(tmp_path / "albedo.exr"))
    Image.fromarray((linear / linear.max() * 255).astype(np.uint8)).save(tmp_path / "albedo.png")

    def rel(path, png_is_srgb):
        ya, yb = reader.read_albedo(path, png_is_srgb).astype(np.float64)[0] @ w
        return abs(ya - yb) / max(ya, yb, PARAMS["rel_epsilon"])

    exr = rel(tmp_path / "albedo.exr", PARAMS["albedo_png_is_srgb"])
    assert exr == pytest.approx(0.5, abs=1e-6)
    assert rel(tmp_path / "albedo.png", PARAMS["albedo_png_is_srgb"]) == pytest.approx(exr, abs=0.01)
    assert rel(tmp_path / "albedo.png", True) > exr + 0.2  # sRGB-decoding a linear file


def test_bad_albedo_is_counted_once_per_scene(mini_sources, tmp_path):
    root = tmp_path / "mid"
    shutil.copytree(mini_sources["mid"], root)
    truncated = root / mini.SCENES["fixture_scene1"][1][1] / "albedo.exr"
    truncated.write_bytes(truncated.read_bytes()[:40])
    square = root / mini.SCENES["fixture_scene5"][1][1] / "albedo.png"
    Image.new("RGB", (100, 100), (128, 128, 128)).save(square)
    assert assign_split("fixture_scene1", PARAMS["split_fractions"], SEED) == "train"
    assert assign_split("fixture_scene5", PARAMS["split_fractions"], SEED) == "train"
    records = build_split(TASK, "train", root, tmp_path / "out", 30)
    assert not {"fixture_scene1", "fixture_scene5"} & {r.source_dict["scene"] for r in records}
    m = read_manifest(split_dir(tmp_path / "out", TASK, "train"))
    assert m["rejected"]["unreadable_albedo"] == 1
    assert m["rejected"]["albedo_aspect_mismatch"] == 1
