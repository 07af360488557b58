"""The paper's numbers are transcribed consistently: printed Means equal the mean of their row,
shared rows agree across tables, every key names a real backbone, method and task."""

from __future__ import annotations

import pytest

from builders.registry import load_registry
from harness.config import load_table, table_names
from harness.methods import METHODS
from harness.paper import DIAGNOSTICS, PAPER, paper_scores
from livr_core.backbones import BACKBONES


@pytest.mark.parametrize("key", [k for k, v in PAPER.items() if "mean" in v])
def test_printed_means_match_their_rows(key):
    row = PAPER[key]
    values = [v for t, v in row.items() if t != "mean"]
    assert row["mean"] == pytest.approx(sum(values) / len(values), abs=0.006)


def test_keys_are_known_names():
    tasks = set(load_registry().tasks) | {"mean", "vsp"}
    # Rows a table marks [reported]: methods the toolkit does not run, such as GRPO ones.
    reported = {(load_table(t).paper, m) for t in table_names() for m in load_table(t).reported}
    for (table, backbone, method), row in PAPER.items():
        assert backbone in BACKBONES
        # Mirage itself: a paper-only row
        assert method in METHODS or method == "mirage" or (table, method) in reported
        assert set(row) <= tasks


def test_shared_rows_agree():
    t1 = paper_scores("table1", "qwen3-vl-4b", "livr")
    for table in ("table3", "table4"):
        row = paper_scores(table, "qwen3-vl-4b", "livr")
        assert all(row[t] == t1[t] for t in row)
    assert paper_scores("table3", "qwen3-vl-4b", "latents_only") == paper_scores(
        "table4", "qwen3-vl-4b", "latents_only")
    assert DIAGNOSTICS[("qwen3-vl-4b", "localization", "livr")]["standard"] == t1["localization"]
    assert paper_scores("table1", "tiny-qwen3-vl", "livr") is None
