"""Planning: cells and their cost from manifests, missing splits named before anything runs,
the config hash (what changes it and what does not), and sharding."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.config import load_table
from harness.errors import ConfigError
from harness.plan import MissingSplitsError, parse_shard, plan_cells, shard_cells
from tests.harness.fakes import write_built

ORACLE = {"name": "oracle"}


def test_cells_and_costs(built: Path):
    cells = plan_cells(load_table("3"), built, ORACLE)
    assert len(cells) == 3 * 7
    by_key = {c.key[2:]: c.cost for c in cells}
    livr = by_key[("localization", "livr")]
    # 6 train examples x 10 epochs; val (4) after each of the 10 epochs + 5 test examples.
    assert (livr.epochs, livr.train_examples, livr.train_passes, livr.eval_examples) == (
        10, 6, 60, 45)
    zs = by_key[("localization", "zero_shot")]
    assert (zs.epochs, zs.train_examples, zs.eval_examples) == (0, 0, 5)


def test_limit_and_mixture_costs(built: Path):
    table = load_table("2", {"tasks": ["localization", "counting"], "limit": 3})
    cells = plan_cells(table, built, ORACLE)
    assert {c.key[2] for c in cells} == {"mixture6"}
    sft = next(c for c in cells if c.key[3] == "direct_sft")
    assert sft.config.train_tasks == ("localization", "counting")
    # final checkpoint: no validation passes; 2 tasks x min(6, limit 3) train, 2 x 3 test.
    assert (sft.cost.epochs, sft.cost.train_examples, sft.cost.val_examples,
            sft.cost.test_examples) == (5, 6, 0, 6)


def test_missing_splits_are_all_named(tmp_path: Path):
    built = write_built(tmp_path / "built", ["localization"], {"train": 2, "test": 2})
    with pytest.raises(MissingSplitsError) as err:
        plan_cells(load_table("3"), built, ORACLE)
    text = str(err.value)
    assert str(built / "localization" / "val" / ".livr" / "manifest.json") in text  # best ckpt needs val
    assert str(built / "functional_correspondence" / "test" / ".livr" / "manifest.json") in text
    assert "build-task semantic_correspondence --split train" in text
    assert str(built / "localization" / "test") not in text


def test_zero_shot_needs_only_test(tmp_path: Path):
    built = write_built(tmp_path / "built", ["localization"], {"test": 2})
    cells = plan_cells(load_table("3", {"tasks": ["localization"], "methods": ["zero_shot"]}),
                       built, ORACLE)
    assert [c.key[3] for c in cells] == ["zero_shot"]


def test_hash_changes_with_results_affecting_config(built: Path):
    def livr_hash(table="3", executor=ORACLE, built_dir=built, **overrides) -> str:
        t = load_table(table, {"tasks": ["localization"], **overrides})
        cells = plan_cells(t, built_dir, executor)
        return next(c.hash for c in cells if c.key[3] == "livr")

    base = livr_hash()
    assert livr_hash() == base  # stable
    assert livr_hash(table="4") == base  # same config in another table: same identity
    assert livr_hash(epochs=5) != base
    assert livr_hash(limit=2) != base
    assert livr_hash(executor={"name": "constant", "letter": "A"}) != base
    rebuilt = write_built(built.parent / "rebuilt", ["localization"], {"train": 7, "val": 4,
                                                                       "test": 5})
    assert livr_hash(built_dir=rebuilt) != base  # different data
    cell = plan_cells(load_table("3", {"tasks": ["localization"]}), built, ORACLE)[2]
    assert replace(cell.config, method=cell.config.method.with_changes(latents=8)).hash != base


def test_zero_shot_hash_ignores_checkpoint_rule(built: Path):
    t1 = plan_cells(load_table("1", {"tasks": ["localization"], "methods": ["zero_shot"]}),
                    built, ORACLE)
    t2 = plan_cells(load_table("2", {"tasks": ["localization"], "methods": ["zero_shot"]}),
                    built, ORACLE)
    assert t1[0].config.checkpoint == "none"
    assert t1[0].config.identity()["method"] == t2[0].config.identity()["method"]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 30])
def test_shards_cover_every_cell_exactly_once(built: Path, count: int):
    cells = plan_cells(load_table("3"), built, ORACLE)
    shards = [shard_cells(cells, i, count) for i in range(count)]
    keys = [c.key for shard in shards for c in shard]
    assert sorted(keys) == sorted(c.key for c in cells)  # each once, none lost
    again = [shard_cells(cells, i, count) for i in range(count)]
    assert [[c.key for c in s] for s in again] == [[c.key for c in s] for s in shards]
    weights = [sum(c.cost.weight for c in s) for s in shards]
    if count <= len(cells):
        biggest = max(c.cost.weight for c in cells)
        assert max(weights) - min(weights) <= biggest  # greedy balance bound


def test_shard_assignment_ignores_plan_order(built: Path):
    cells = plan_cells(load_table("3"), built, ORACLE)
    forward = {c.key for c in shard_cells(cells, 1, 3)}
    backward = {c.key for c in shard_cells(list(reversed(cells)), 1, 3)}
    assert forward == backward


@pytest.mark.parametrize("text", ["3/3", "-1/2", "a/b", "1", "0/0"])
def test_bad_shard(text: str):
    with pytest.raises(ConfigError, match="shard"):
        parse_shard(text)
