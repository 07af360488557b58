"""harness.names lists exactly the backbones livr_core can load (read from its source, since
importing it takes ~20 s of transformers imports)."""

from __future__ import annotations

import ast
from pathlib import Path

from builders.registry import load_registry
from harness.names import BACKBONES, task_label


def test_backbones_match_livr_core_registry():
    source = Path(__file__).resolve().parents[2] / "livr_core" / "backbones" / "__init__.py"
    names = [
        node.args[0].value
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "BackboneSpec"
        and node.args and isinstance(node.args[0], ast.Constant)
    ]
    assert names and set(names) == set(BACKBONES)


def test_task_labels_come_from_tasks_toml():
    registry = load_registry()
    assert task_label("localization") == "Loc" and task_label("loc-mix") == "loc-mix"
    assert len({spec.label for spec in registry.tasks.values()}) == len(registry.tasks)
