"""BLINK-5's test split: the BLINK subset builder with tasks.toml [tasks.blink5.params]."""

from builders.tasks.blink_subset import Params, build

__all__ = ["Params", "build"]
