"""Display names in reports: a backbone's label and a task's column name, read from their owners.

Owns `backbone_label` and `task_label`. The labels are written once, beside what they name: a
backbone's in `livr_core.backbones.BACKBONES` (the lazy registry, which imports no model code), a
task's as `label` in its `tasks.toml` table. A name neither knows (a mixture cell, a table's own
name) is shown as it is.
"""

from __future__ import annotations

from builders.registry import RegistryError, load_registry

BACKBONES: dict[str, str] = {
    "qwen2.5-vl-3b": "Qwen2.5-VL-3B",
    "qwen2.5-vl-7b": "Qwen2.5-VL-7B",
    "qwen3-vl-4b": "Qwen3-VL-4B",
    "llava-onevision-1.5-4b": "LLaVA-OV-1.5-4B",
    # Tiny random-initialised backbones built in code: tests and the demo.
    "tiny-qwen2.5-vl": "tiny-Qwen2.5-VL",
    "tiny-qwen3-vl": "tiny-Qwen3-VL",
    "tiny-llava": "tiny-LLaVA",
}


def backbone_label(name: str) -> str:
    return BACKBONES.get(name, name)


def task_label(name: str) -> str:
    try:
        return load_registry().resolve(name).label
    except RegistryError:  # a mixture's or a table's own name
        return name
