"""Display names in reports: a backbone's label and a task's column name, read from their owners.

Owns `backbone_label` and `task_label`. The labels are written once, beside what they name: a
backbone's in `livr_core.backbones.BACKBONES` (the lazy registry, which imports no model code), a
task's as `label` in its `tasks.toml` table. A name neither knows (a mixture cell, a table's own
name) is shown as it is.
"""

from __future__ import annotations

from builders.registry import RegistryError, load_registry
from livr_core.backbones import BACKBONES


def backbone_label(name: str) -> str:
    spec = BACKBONES.get(name)
    return spec.label if spec is not None else name


def task_label(name: str) -> str:
    try:
        return load_registry().resolve(name).label
    except RegistryError:  # a mixture's or a table's own name
        return name
