"""`build-task all --split S` on a root holding only some sources (one sub-folder per source,
named by the source): every task with a source and a builder is built, every other one is
reported as skipped with the reason, and the command succeeds."""

from __future__ import annotations

import importlib
import importlib.util

import pytest

from builders.cli import main
from builders.io import read_manifest, split_dir
from builders.registry import load_registry

PRESENT = ("coco", "pixmo", "blink")


def _source(spec, split: str) -> str:
    return "blink" if split == "test" and spec.test_source == "blink" else spec.source


def _procedural(source: str) -> bool:
    """Sources whose data can be generated without files (VSP's maps)."""
    return getattr(importlib.import_module(f"builders.sources.{source}"), "PROCEDURAL", False)


def _module(spec, split: str) -> str:
    return "blink_test" if split == "test" and spec.test_source == "blink" else spec.name


@pytest.fixture(scope="module")
def root(mini_sources, tmp_path_factory):
    root = tmp_path_factory.mktemp("all_sources")
    for source in PRESENT:
        (root / source).symlink_to(mini_sources[source], target_is_directory=True)
    return root


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_all_builds_what_it_has_and_reports_the_rest(root, tmp_path, capsys, split):
    out = tmp_path / "out"
    rc = main(["all", "--split", split, "--source-root", str(root), "--out", str(out),
               "--n", "2", "--no-progress"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    skipped = {line.split(":", 1)[0].removeprefix("skipped "): line
               for line in printed.splitlines() if line.startswith("skipped ")}
    built = []
    for spec in load_registry().tasks.values():
        has_builder = importlib.util.find_spec(f"builders.tasks.{_module(spec, split)}") is not None
        if split not in spec.sizes:  # e.g. the evaluation-only benchmarks on train
            assert f"{spec.name}: has no {split} split" in skipped.pop(spec.name)
        elif not has_builder:
            assert "no builder module" in skipped.pop(spec.name)
        elif _source(spec, split) not in PRESENT and not _procedural(_source(spec, split)):
            line = skipped.pop(spec.name)
            assert f"{spec.name}: {_source(spec, split)}: " in line and f"under {root}" in line, line
        else:
            built.append(spec.name)
            assert read_manifest(split_dir(out, spec.name, split))["n"] == 2
    assert skipped == {}  # nothing else was skipped
    assert {p.parent.name for p in out.glob(f"*/{split}")} == set(built)
    assert "counting" in built and (split != "test" or "jigsaw" in built)
