"""RoboSpatial-Home's pointing category: the RoboSpatial builder with
tasks.toml [tasks.robospatial_context.params]."""

from builders.tasks.robospatial import Params, build

__all__ = ["Params", "build"]
