"""Display names come from their owners: a backbone's label from livr_core's registry, a task's
from its `label` in tasks.toml; a name neither knows is shown as it is."""

from __future__ import annotations

from builders.registry import load_registry
from harness.names import backbone_label, task_label
from livr_core.backbones import BACKBONES


def test_backbone_labels_come_from_the_backbone_registry():
    assert backbone_label("qwen3-vl-4b") == "Qwen3-VL-4B"
    assert backbone_label("llava-onevision-1.5-4b") == "LLaVA-OV-1.5-4B"
    assert backbone_label("my-own-vlm") == "my-own-vlm"
    assert len({spec.label for spec in BACKBONES.values()}) == len(BACKBONES)


def test_task_labels_come_from_tasks_toml():
    registry = load_registry()
    assert task_label("localization") == "Loc" and task_label("counting") == "Count"
    assert task_label("loc-mix") == "loc-mix"  # a mixture cell's own name
    assert len({spec.label for spec in registry.tasks.values()}) == len(registry.tasks)
