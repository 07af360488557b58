"""VSP spatial planning: generated maps are solvable and follow the level mix, the gold plan walks
to the goal, builds are byte-identical per seed, the official layouts are read (miniature written
in both published formats), and the helper images equal their definitions pixel for pixel
(VSP: the map with the gold plan drawn; Jigsaw: the puzzle with its true patch pasted back)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from builders.build import BuildContext
from builders.helpers import HELPERS_FILE, read_helpers
from builders.imaging import decode_bytes, encode_image, load_image
from builders.io import read_manifest, split_dir
from builders.registry import get_task
from builders.sources import vsp as vsp_source
from builders.tasks import jigsaw
from builders.vsp_maps import (
    MIRAGE_RULES,
    MapError,
    VspMap,
    render_map,
    render_path,
    shortest_paths,
    simulate,
)

from .conftest import build_split


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("vsp")
    return out, build_split("vsp", "train", out / "no-such-source", out / "a", 20)


def _map(record) -> VspMap:
    return VspMap.from_codes(record.source_dict["map_desc"])


def test_generated_maps_are_solvable_and_the_gold_plan_reaches_the_goal(generated):
    _, records = generated
    for r in records:
        s, vsp_map = r.source_dict, _map(r)
        moves = tuple(s["gold_moves"].split(","))
        length, plans = shortest_paths(vsp_map)
        assert length == len(moves) >= 1 and moves in plans and s["shortest_plans"] == len(plans)
        assert simulate(vsp_map, moves, MIRAGE_RULES).success
        assert r.answer == "\\boxed{" + ", ".join(
            {"L": "LEFT", "R": "RIGHT", "U": "UP", "D": "DOWN"}[m] for m in moves) + "}"
        assert "<image>" in r.prompt and "For example, your final answer" in r.prompt
        assert decode_bytes(r.images[0]).size == (64 * vsp_map.size,) * 2


def test_level_mix_follows_the_weights_at_any_n(generated):
    _, records = generated
    # train weights 1:2:3:4 in blocks of 10: 20 examples are exactly 2/4/6/8
    assert Counter(r.source_dict["level"] for r in records) == {3: 2, 4: 4, 5: 6, 6: 8}


def test_two_builds_with_one_seed_are_byte_identical(generated, tmp_path):
    out, _ = generated
    build_split("vsp", "train", out / "no-such-source", tmp_path, 20)
    first, second = split_dir(out / "a", "vsp", "train"), split_dir(tmp_path, "vsp", "train")
    names = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(second)) for p in second.rglob("*") if p.is_file())
    assert f".livr/{HELPERS_FILE}" in names
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    other = build_split("vsp", "train", out / "no-such-source", tmp_path / "seed7", 20, seed=7)
    assert [r.source for r in other] != [r.source for r in build_split(
        "vsp", "train", out / "no-such-source", tmp_path / "again", 20)]


def test_splits_share_no_map(tmp_path):
    keys = {}
    for split in ("train", "val", "test"):
        records = build_split("vsp", split, tmp_path / "none", tmp_path, 24)
        keys[split] = {r.source_dict["map_id"] for r in records}
        assert len(keys[split]) == 24
        assert ("For example" in records[0].prompt) == (split != "test")
    assert not keys["train"] & keys["val"] and not keys["train"] & keys["test"]
    assert not keys["val"] & keys["test"]


def test_vsp_helper_is_the_map_with_the_gold_plan_drawn(generated):
    out, records = generated
    split = split_dir(out / "a", "vsp", "train")
    helpers = read_helpers(split)
    manifest = read_manifest(split)
    assert manifest["helper_file"] == HELPERS_FILE and set(helpers) == {r.idx for r in records}
    for r, entry in zip(records, manifest["records"], strict=True):
        vsp_map, moves = _map(r), r.source_dict["gold_moves"].split(",")
        expected = np.asarray(render_path(vsp_map, moves))
        assert np.array_equal(np.asarray(helpers[r.idx]), expected)  # PNG: lossless
        assert np.array_equal(np.asarray(decode_bytes(r.images[0])), np.asarray(render_map(vsp_map)))
        assert "helper_image" in entry
        # the drawn path is red and covers the start and goal cell centres
        for cell in (vsp_map.start, vsp_map.goal):
            y, x = (64 * c + 32 for c in cell)
            assert tuple(expected[y, x]) != tuple(np.asarray(render_map(vsp_map))[y, x]) or \
                cell == vsp_map.goal


def test_official_layouts_are_read(mini_sources, tmp_path):
    root = mini_sources["vsp"]
    test = build_split("vsp", "test", root, tmp_path, 8)
    assert Counter(r.source_dict["level"] for r in test) == {3: 2, 4: 2, 5: 2, 6: 2}
    for r in test:
        s = r.source_dict
        level, number = s["map_id"].split("/")
        assert vsp_source.read_table(root / "maps" / level / "table" / f"{number}.txt") == _map(r)
        official = load_image(root / s["source_images"][0])
        assert np.array_equal(np.asarray(decode_bytes(r.images[0])), np.asarray(official))
        assert np.array_equal(np.asarray(official), np.asarray(render_map(_map(r))))
    train = build_split("vsp", "train", root, tmp_path, 6)
    rows = {f"mirage/{json.loads(line)['map_id']}": json.loads(line)
            for line in (root / "train_direct.jsonl").read_text().splitlines()}
    helpers = read_helpers(split_dir(tmp_path, "vsp", "train"))
    for r in train:
        row = rows[r.source_dict["map_id"]]
        assert r.answer == row["text_output"] and r.source_dict["helper"] == "official"
        helper_file = root / row["image_output"].split("vsp_spatial_planning/", 1)[1]
        assert np.array_equal(np.asarray(helpers[r.idx]), np.asarray(load_image(helper_file)))


def test_bad_official_files_name_the_file(tmp_path):
    bad = tmp_path / "maps" / "level3" / "table"
    bad.mkdir(parents=True)
    (bad / "0.txt").write_text("| | Col 1 | Col 2 |\n| Row 1 | @ | ? |\n| Row 2 | _ | * |\n")
    with pytest.raises(MapError, match="0.txt: not a VSP map table"):
        vsp_source.benchmark_maps(tmp_path, [3])
    (tmp_path / "train_direct.jsonl").write_text('{"map_desc": [[1, 2]]}\n')
    with pytest.raises(ValueError, match="train_direct.jsonl:1: not a Mirage VSP row"):
        list(vsp_source.mirage_rows(tmp_path))


def test_jigsaw_helper_is_the_puzzle_with_its_true_patch_pasted_back(mini_sources, tmp_path):
    spec = get_task("jigsaw")
    ctx = BuildContext(spec, "train", mini_sources["coco"], 42)
    examples = [e for _, e in zip(range(4), jigsaw.build(ctx))]
    for e in examples:
        s = e.source
        puzzle, helper = e.images[0], e.helper
        pasted = puzzle.copy()
        original = load_image(mini_sources["coco"] / s["image"])
        pasted.paste(original.crop(s["true_patch"]), tuple(s["hole_in_image_1"][:2]))
        assert np.array_equal(np.asarray(helper), np.asarray(pasted))
        assert np.array_equal(np.asarray(helper), np.asarray(original.crop(s["canvas"])))
    # stored with the split, encoded exactly like the split's images
    records = build_split("jigsaw", "train", mini_sources["coco"], tmp_path, 4)
    helpers = read_helpers(split_dir(tmp_path, "jigsaw", "train"))
    for r, e in zip(records, examples, strict=True):
        assert r.source_dict["canvas"] == e.source["canvas"]
        again = decode_bytes(encode_image(e.helper, "jpeg", 95))
        assert np.array_equal(np.asarray(helpers[r.idx]), np.asarray(again))


def test_a_split_without_helpers_says_how_to_get_them(tmp_path, mini_sources):
    build_split("jigsaw", "test", mini_sources["blink"], tmp_path, 2)
    with pytest.raises(FileNotFoundError, match="no Mirage helper images"):
        read_helpers(split_dir(tmp_path, "jigsaw", "test"))


def test_render_needs_the_gym_sprites(monkeypatch):
    import builders.vsp_maps as maps

    maps._sprites.cache_clear()
    monkeypatch.setattr(maps, "SPRITE_PACKAGE", "no_such_package_here")
    with pytest.raises(MapError, match="pip install gym==0.26.2"):
        maps.render_map(VspMap.from_desc(["SF", "FG"]))
    maps._sprites.cache_clear()


def test_map_validation():
    with pytest.raises(MapError, match="exactly one start"):
        VspMap.from_desc(["FF", "FG"])
    with pytest.raises(MapError, match="square"):
        VspMap.from_desc(["SFG", "FF"])
    assert isinstance(render_map(VspMap.from_desc(["SH", "FG"])), Image.Image)
