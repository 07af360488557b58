"""A built root is a ready Hugging Face dataset: `load_dataset("<root>/<task>")`,
`load_dataset("<root>", "<task>")` and `load_dataset("parquet", data_dir=...)` give exactly the
kept rows under train / validation / test (de-duplicated rows and manifests sit in `.livr/`, which
loaders skip), pandas reads a split folder as its kept rows, the card and `dataset_info` follow
the manifests, the Parquet feature metadata is the form `datasets` 3.x reads too, and ids are
unique across our splits and BLINK's."""

from __future__ import annotations

import json
import shutil

import datasets
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from builders.card import write_cards
from builders.io import DATASET_INFO, read_manifest, read_split, split_dir
from builders.manifest import HF_SPLITS
from builders.record import ID_PREFIX
from dedup.apply import apply_split
from dedup.pairs import Removal

from .conftest import build_split

SIZES = {"jigsaw": {"train": 6, "val": 2, "test": 5}, "localization": {"train": 4, "test": 5}}
REMOVED = {("jigsaw", "train"): [1, 4]}  # positions removed by a (simulated) dedup run


@pytest.fixture(scope="module")
def root(mini_sources, tmp_path_factory):
    """Two tasks built from the miniature COCO and BLINK, two jigsaw/train rows then removed
    the way dedup removes them, and the cards regenerated as dedup does."""
    root = tmp_path_factory.mktemp("built")
    for task, sizes in SIZES.items():
        for split, n in sizes.items():
            source = mini_sources["blink" if split == "test" else "coco"]
            build_split(task, split, source, root, n)
    for (task, split), positions in REMOVED.items():
        path = split_dir(root, task, split)
        rows = read_split(path)
        gone = [Removal(split, rows[i].idx, "phash_ssim") for i in positions]
        apply_split(path, rows, gone, "blink", {"model": "tiny"}, 500)
    write_cards(root)
    return root


def _kept(root, task) -> dict[str, list[str]]:
    return {HF_SPLITS[s]: [r.idx for r in read_split(split_dir(root, task, s))]
            for s in SIZES[task]}


def _ids(ds: datasets.DatasetDict) -> dict[str, list[str]]:
    return {name: list(split["idx"]) for name, split in ds.items()}


def test_kept_rows_only(root):
    kept = _kept(root, "jigsaw")
    assert len(kept["train"]) == 4 and len(kept["validation"]) == 2 and len(kept["test"]) == 5
    removed = {r.idx for r in read_split(split_dir(root, "jigsaw", "train"))} ^ {
        f"{ID_PREFIX}train_Jigsaw_{i}" for i in range(1, 7)}
    assert removed == {f"{ID_PREFIX}train_Jigsaw_{i + 1}" for i in REMOVED[("jigsaw", "train")]}


@pytest.mark.parametrize("how", ["task folder", "root config", "data_dir"])
def test_load_dataset_gives_the_kept_rows_with_hf_split_names(root, how, tmp_path):
    kwargs = {"task folder": {"path": str(root / "jigsaw")},
              "root config": {"path": str(root), "name": "jigsaw"},
              "data_dir": {"path": "parquet", "data_dir": str(root / "jigsaw")}}[how]
    ds = datasets.load_dataset(**kwargs, cache_dir=str(tmp_path / "cache"))
    assert _ids(ds) == _kept(root, "jigsaw")
    row = ds["train"][0]
    assert row["image_1"].size[0] > 0 and row["image_4"] is None  # images decode to PIL
    assert isinstance(row["choices"], list) and row["answer"] in ("(A)", "(B)")


def test_pandas_reads_a_split_folder_as_its_kept_rows(root):
    for task, sizes in SIZES.items():
        for split in sizes:
            path = split_dir(root, task, split)
            frame = pd.read_parquet(path)
            assert list(frame["idx"]) == [r.idx for r in read_split(path)]


def _front_matter(path) -> dict:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_cards_follow_the_manifests(root):
    card = _front_matter(root / "jigsaw" / "README.md")
    assert card["configs"] == [{"config_name": "default", "data_files": [
        {"split": "train", "path": "train/data-*.parquet"},
        {"split": "validation", "path": "val/data-*.parquet"},
        {"split": "test", "path": "test/data-*.parquet"}]}]
    assert {s["name"]: s["num_examples"] for s in card["dataset_info"]["splits"]} == {
        name: len(ids) for name, ids in _kept(root, "jigsaw").items()}
    features = {f["name"]: f for f in card["dataset_info"]["features"]}
    assert features["choices"] == {"name": "choices", "sequence": "string"}
    assert features["image_1"] == {"name": "image_1", "dtype": "image"}
    text = (root / "jigsaw" / "README.md").read_text()
    assert "COCO 2017: annotations CC BY 4.0" in text and "BLINK: Apache-2.0" in text
    assert "@inproceedings{li2026latent" in text
    assert "build-task jigsaw --split train --seed 42 --n 6" in text and "dedup --against blink" \
        in text
    top = _front_matter(root / "README.md")
    assert [c["config_name"] for c in top["configs"]] == ["jigsaw", "localization"]
    assert top["configs"][1]["data_files"] == [
        {"split": "train", "path": "localization/train/data-*.parquet"},
        {"split": "test", "path": "localization/test/data-*.parquet"}]


def test_cards_are_a_function_of_the_manifests(root, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    for card in (copy / "README.md", copy / "jigsaw" / "README.md"):
        card.unlink()
    write_cards(copy)
    for rel in ("README.md", "jigsaw/README.md", "localization/README.md"):
        assert (copy / rel).read_bytes() == (root / rel).read_bytes(), rel


def test_dataset_info_of_each_manifest_loads_in_datasets(root):
    path = split_dir(root, "jigsaw", "train")
    info = datasets.DatasetInfo.from_dict(json.loads((path / DATASET_INFO).read_text()))
    manifest = read_manifest(path)
    assert info.splits["train"].num_examples == manifest["n"] == 4
    shard = manifest["shards"][0]
    assert info.download_checksums[f"train/{shard}"]["checksum"] == \
        manifest["files"][shard]["sha256"]
    assert info.features["choices"] == datasets.Sequence(datasets.Value("string"))


def test_parquet_metadata_is_readable_by_datasets_3(root):
    """`datasets` < 4 knows no `List` feature type and rejects a file naming it (checked with
    datasets 3.6.0: see docs/GUARANTEES.md); every file we write names `Sequence` instead."""
    for path in root.rglob("*.parquet"):
        meta = json.loads(pq.read_schema(path).metadata[b"huggingface"])
        types = json.dumps(meta)
        assert '"_type": "List"' not in types and '"_type": "Sequence"' in types, path


def test_ids_are_unique_across_our_splits_and_blink(root, mini_sources):
    ours = [r.idx for task, sizes in SIZES.items() for split in sizes
            for r in read_split(split_dir(root, task, split))
            if split != "test"]
    assert all(i.startswith(ID_PREFIX) for i in ours)
    blink = [row["idx"] for config in ("Jigsaw", "Object_Localization") for part in ("val", "test")
             for row in pq.read_table(mini_sources["blink"] / config /
                                      f"{part}-00000-of-00001.parquet").to_pylist()]
    merged = ours + blink  # before: our val_Jigsaw_1 was BLINK's val_Jigsaw_1
    assert len(merged) == len(set(merged))
    tests = [r.idx for task in SIZES for r in read_split(split_dir(root, task, "test"))]
    assert set(tests) <= set(blink)  # BLINK-sourced test splits keep BLINK's ids
