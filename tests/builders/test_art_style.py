"""Art Style examples checked against the miniature ArtBench folders: the style of an image is the
folder it lies in, read here straight from the file system."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from builders.build import BuildContext
from builders.imaging import decode_bytes, load_image
from builders.io import read_manifest, split_dir
from builders.registry import get_task
from builders.sources import SourceLayoutError, artbench
from builders.tasks import art_style

from .conftest import build_split

N = {"train": 12, "val": 3}


@pytest.fixture(scope="module")
def built(mini_sources, tmp_path_factory):
    out = tmp_path_factory.mktemp("art")
    root = mini_sources["artbench"]
    return out, {s: build_split("art_style", s, root, out, n) for s, n in N.items()}


def _folder_counts(root: Path, split: str) -> dict[str, int]:
    return {d: len(os.listdir(root / split / d)) for d in sorted(os.listdir(root / split))}


def _style_of(rel: str) -> str:
    parts = Path(rel).parts
    assert len(parts) == 3 and parts[0] == get_task("art_style").params["source_split"]
    return parts[1]


def test_positive_shares_the_reference_style_and_negative_does_not(built, mini_sources):
    root = mini_sources["artbench"]
    for records in built[1].values():
        for r in records:
            s = r.source_dict
            ref, a, b = s["source_images"]
            pos, neg = (a, b) if r.answer == "(A)" else (b, a)
            assert _style_of(pos) == _style_of(ref) != _style_of(neg)
            assert pos != ref
            assert s["positive"] == r.answer[1]
            assert s["reference"] == {"path": ref, "style": _style_of(ref)}
            assert s["options"] == {"A": {"path": a, "style": _style_of(a)},
                                    "B": {"path": b, "style": _style_of(b)}}
            # the images are the files themselves, in prompt order (JPEG re-encoding error only)
            for data, rel in zip(r.images, (ref, a, b), strict=True):
                got = np.asarray(decode_bytes(data), dtype=np.int16)
                want = np.asarray(load_image(root / rel), dtype=np.int16)
                assert got.shape == want.shape and np.abs(got - want).mean() < 4


def _used(records: dict) -> list[str]:
    return [img for rs in records.values() for r in rs for img in r.source_dict["source_images"]]


def test_every_image_is_used_once_in_one_split(built):
    used = _used(built[1])
    assert len(used) == len(set(used)) == 3 * sum(N.values())


def test_pool_is_style_balanced_and_the_cap_is_counted(built, mini_sources):
    root = mini_sources["artbench"]
    counts = _folder_counts(root, "train")
    assert len(set(counts.values())) > 1  # the miniature is unbalanced, so the cap must act
    cap = min(counts.values())
    spec = get_task("art_style")
    pools = [
        art_style.balance(artbench.list_images(root, "train"), BuildContext(spec, split, root, 42))
        for split in N
    ]
    assert pools[0] == pools[1]  # one pool shared by all our splits
    pool = pools[0]
    assert sorted(pool) == sorted(counts)
    assert all(len(images) == cap for images in pool.values())
    for style, images in pool.items():
        assert all(im.path.parent == root / "train" / style for im in images)
    in_pool = {im.rel for images in pool.values() for im in images}
    out, records = built
    assert set(_used(records)) <= in_pool
    manifests = [read_manifest(split_dir(out, "art_style", s)) for s in N]
    capped = sum(m["rejected"]["style_balance_cap"] for m in manifests)
    assert capped == sum(counts.values()) - cap * len(counts)


def test_missing_root_names_the_layout(tmp_path):
    with pytest.raises(SourceLayoutError, match="artbench-10-imagefolder-split"):
        build_split("artbench", "train", tmp_path, tmp_path / "out", 2)
