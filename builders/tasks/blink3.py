"""BLINK-3's test split: the BLINK subset builder with tasks.toml [tasks.blink3.params]."""

from builders.tasks.blink_subset import Params, build

__all__ = ["Params", "build"]
