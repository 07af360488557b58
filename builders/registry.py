"""The task registry: loads `tasks.toml` into typed `TaskSpec`s and resolves names and aliases.

`tasks.toml` (repository root) is the only place task numbers live; this module owns reading it,
validating it and hashing it for manifests. Set `LIVR_TASKS_TOML` to use another registry file.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

REGISTRY_ENV = "LIVR_TASKS_TOML"
DEFAULT_REGISTRY = Path(__file__).resolve().parent.parent / "tasks.toml"
SPLITS = ("train", "val", "test")
LETTERS = "ABCDEFGH"
# Answer types: "mcq" (a letter "(A)".."(H)"), "open" (an integer as text: counting),
# "plan" (a move sequence, scored by simulation: VSP) and, for the generalisation
# benchmarks (harness.benchmarks scores them), "yesno" ("yes" / "no"), "point" (a polygon in
# normalised image coordinates; the answer is a point inside it) and "text" (a free-form
# answer, used as training data only).
ANSWER_TYPES = ("mcq", "open", "plan", "yesno", "point", "text")

_REQUIRED = (
    "source", "blink_config", "sub_task", "answer_type", "num_options", "test_source",
    "dedup_against", "question", "choices", "prompt", "sizes",
)


class RegistryError(ValueError):
    """The registry file is malformed or a task name is unknown."""


@dataclass(frozen=True)
class Defaults:
    seed: int = 42
    image_format: str = "jpeg"
    jpeg_quality: int = 95
    shard_rows: int = 500
    max_image_pixels: int = 89_478_485  # tasks.toml [defaults] gives the reason


@dataclass(frozen=True)
class TaskSpec:
    """One `[tasks.<name>]` table."""

    name: str
    aliases: tuple[str, ...]
    source: str
    blink_config: str
    sub_task: str
    answer_type: str
    num_options: int
    test_source: str
    dedup_against: str
    question: str
    choices: tuple[str, ...]
    prompt: str
    sizes: dict[str, int]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def letters(self) -> str:
        return LETTERS[: self.num_options]

    def size(self, split: str) -> int:
        if split not in self.sizes:
            raise RegistryError(
                f"task {self.name!r} has no {split!r} split in tasks.toml "
                f"(it has: {', '.join(self.sizes)})"
            )
        return int(self.sizes[split])

    def render_prompt(self, **fields: str) -> str:
        return self.prompt.format(**fields)

    def render_question(self, **fields: str) -> str:
        return self.question.format(**fields)


@dataclass(frozen=True)
class Registry:
    path: Path
    sha256: str
    defaults: Defaults
    tasks: dict[str, TaskSpec]

    def resolve(self, name: str) -> TaskSpec:
        """A task by its name or alias; unknown names list the valid ones."""
        key = name.strip().lower().replace("-", "_")
        if key in self.tasks:
            return self.tasks[key]
        for spec in self.tasks.values():
            if key in spec.aliases:
                return spec
        raise RegistryError(f"unknown task {name!r}; known tasks and aliases: {self.describe_names()}")

    def describe_names(self) -> str:
        parts = []
        for spec in self.tasks.values():
            parts.append(spec.name + (f" ({', '.join(spec.aliases)})" if spec.aliases else ""))
        return ", ".join(parts)


def _task_from_table(name: str, table: dict[str, Any], path: Path) -> TaskSpec:
    missing = [k for k in _REQUIRED if k not in table]
    if missing:
        raise RegistryError(f"{path}: [tasks.{name}] lacks {', '.join(missing)}; add them")
    if table["answer_type"] not in ANSWER_TYPES:
        raise RegistryError(f"{path}: [tasks.{name}] answer_type must be one of "
                            f"{', '.join(map(repr, ANSWER_TYPES))}")
    if table["answer_type"] == "mcq" and len(table["choices"]) != table["num_options"]:
        raise RegistryError(
            f"{path}: [tasks.{name}] has {len(table['choices'])} choices but num_options = "
            f"{table['num_options']}"
        )
    unknown_splits = set(table["sizes"]) - set(SPLITS)
    if unknown_splits:
        raise RegistryError(f"{path}: [tasks.{name}].sizes has unknown splits {sorted(unknown_splits)}")
    return TaskSpec(
        name=name,
        aliases=tuple(a.lower() for a in table.get("aliases", [])),
        source=table["source"],
        blink_config=table["blink_config"],
        sub_task=table["sub_task"],
        answer_type=table["answer_type"],
        num_options=int(table["num_options"]),
        test_source=table["test_source"],
        dedup_against=table["dedup_against"],
        question=table["question"],
        choices=tuple(table["choices"]),
        prompt=table["prompt"],
        sizes={k: int(v) for k, v in table["sizes"].items()},
        params=dict(table.get("params", {})),
    )


@lru_cache(maxsize=8)
def _load(path: Path) -> Registry:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read the task registry {path}: {exc}") from exc
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path} is not valid TOML: {exc}") from exc
    defaults = Defaults(**doc.get("defaults", {}))
    tasks = {name: _task_from_table(name, t, path) for name, t in doc.get("tasks", {}).items()}
    return Registry(path=path, sha256=hashlib.sha256(raw).hexdigest(), defaults=defaults, tasks=tasks)


def load_registry(path: str | os.PathLike | None = None) -> Registry:
    """The registry at `path`, `$LIVR_TASKS_TOML`, or the repository's `tasks.toml`."""
    chosen = path or os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY
    return _load(Path(chosen).resolve())


def get_task(name: str) -> TaskSpec:
    return load_registry().resolve(name)
