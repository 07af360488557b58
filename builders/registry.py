"""The task registry: loads `tasks.toml` into typed `TaskSpec`s and resolves names and aliases.

`tasks.toml` (repository root) is the only place task numbers live; this module owns reading it,
validating it and hashing it for manifests. Set `LIVR_TASKS_TOML` to use another registry file.
Every problem with the file is a `RegistryError` naming the file, the line and the key (a TOML
syntax error, a missing or mistyped key of `[defaults]` or `[tasks.<name>]`, and a builder
parameter a builder asks for that `[tasks.<name>.params]` lacks).
"""

from __future__ import annotations

import hashlib
import os
import re
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


def _line_of(text: str, table: str, key: str | None = None) -> int | None:
    """1-based line of `[table]` in `text`, or of `key = ...` inside it (None when absent)."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\s*" + re.escape(table).replace(r"\.", r"\s*\.\s*") + r"\s*\]")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None or key is None:
        return None if start is None else start + 1
    assign = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    for i in range(start + 1, len(lines)):
        if lines[i].lstrip().startswith("["):
            break
        if assign.match(lines[i]):
            return i + 1
    return start + 1


class _Where:
    """Names places in one registry file for error messages: `<file>, line N: [table] key`."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text

    def __call__(self, table: str, key: str | None = None) -> str:
        line = _line_of(self.text, table, key)
        at = f", line {line}" if line else ""
        return f"{self.path}{at}: [{table}]" + (f" {key}" if key else "")


class Params(dict):
    """A task's builder parameters; a parameter the builder needs but the file lacks is a
    `RegistryError` naming the file, the table and the key (not a bare KeyError)."""

    where: str = ""

    def __missing__(self, key: str) -> Any:
        raise RegistryError(f"{self.where} lacks the builder parameter {key!r}; add it (see the "
                            f"repository's tasks.toml for its meaning and default)")


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

    def source_for(self, split: str) -> str:
        """The raw source a split reads: BLINK for BLINK-tested test splits, else `source`."""
        return "blink" if split == "test" and self.test_source == "blink" else self.source

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


# Each key of a task table: the type it must have (checked at load, so a mistyped value is an
# error naming the line instead of a traceback inside a builder).
_TYPES: dict[str, type | tuple[type, ...]] = {
    "aliases": list, "source": str, "blink_config": str, "sub_task": str, "answer_type": str,
    "num_options": int, "test_source": str, "dedup_against": str, "question": str,
    "choices": list, "prompt": str, "sizes": dict, "params": dict,
}


def _task_from_table(name: str, table: Any, where: _Where) -> TaskSpec:
    at = f"tasks.{name}"
    if not isinstance(table, dict):
        raise RegistryError(f"{where(at)} must be a table ([tasks.{name}]), got {table!r}")
    missing = [k for k in _REQUIRED if k not in table]
    if missing:
        raise RegistryError(f"{where(at)} lacks {', '.join(missing)}; add them")
    for key, kind in _TYPES.items():
        value = table.get(key)
        if key in table and (not isinstance(value, kind) or isinstance(value, bool)):
            want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise RegistryError(f"{where(at, key)} must be a {want}, got {value!r}")
    for key in ("aliases", "choices"):
        if not all(isinstance(x, str) for x in table.get(key, [])):
            raise RegistryError(f"{where(at, key)} must be a list of strings")
    if table["answer_type"] not in ANSWER_TYPES:
        raise RegistryError(f"{where(at, 'answer_type')} must be one of "
                            f"{', '.join(map(repr, ANSWER_TYPES))}, got {table['answer_type']!r}")
    if not 0 <= table["num_options"] <= len(LETTERS):
        raise RegistryError(f"{where(at, 'num_options')} must be 0..{len(LETTERS)}")
    if table["answer_type"] == "mcq" and len(table["choices"]) != table["num_options"]:
        raise RegistryError(
            f"{where(at, 'choices')} has {len(table['choices'])} choices but num_options = "
            f"{table['num_options']}"
        )
    unknown_splits = set(table["sizes"]) - set(SPLITS)
    if unknown_splits:
        raise RegistryError(f"{where(at, 'sizes')} has unknown splits {sorted(unknown_splits)}; "
                            f"use {', '.join(SPLITS)}")
    for split, size in table["sizes"].items():
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise RegistryError(f"{where(at, 'sizes')} {split} must be a positive integer, "
                                f"got {size!r}")
    params = Params(table.get("params", {}))
    params.where = where(f"{at}.params")
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
        params=params,
    )


def _defaults(doc: dict[str, Any], where: _Where) -> Defaults:
    table = doc.get("defaults", {})
    if not isinstance(table, dict):
        raise RegistryError(f"{where('defaults')} must be a table")
    fields_ = Defaults.__dataclass_fields__
    for key, value in table.items():
        if key not in fields_:
            raise RegistryError(f"{where('defaults', key)} is not a known default; known: "
                                f"{', '.join(fields_)}")
        kind = type(getattr(Defaults, key))
        if not isinstance(value, kind) or isinstance(value, bool):
            raise RegistryError(f"{where('defaults', key)} must be a {kind.__name__}, "
                                f"got {value!r}")
    if table.get("shard_rows", 1) <= 0:
        raise RegistryError(f"{where('defaults', 'shard_rows')} must be positive")
    return Defaults(**table)


@lru_cache(maxsize=8)
def _load(path: Path) -> Registry:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read the task registry {path}: {exc}") from exc
    try:
        text = raw.decode("utf-8")
        doc = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path} is not UTF-8 text ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path} is not valid TOML: {exc}; fix that line") from exc
    where = _Where(path, text)
    defaults = _defaults(doc, where)
    tasks_table = doc.get("tasks", {})
    if not isinstance(tasks_table, dict):
        raise RegistryError(f"{where('tasks')} must be a table of [tasks.<name>] tables")
    tasks = {name: _task_from_table(name, t, where) for name, t in tasks_table.items()}
    return Registry(path=path, sha256=hashlib.sha256(raw).hexdigest(), defaults=defaults, tasks=tasks)


def load_registry(path: str | os.PathLike | None = None) -> Registry:
    """The registry at `path`, `$LIVR_TASKS_TOML`, or the repository's `tasks.toml`."""
    chosen = path or os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY
    return _load(Path(chosen).resolve())


def get_task(name: str) -> TaskSpec:
    return load_registry().resolve(name)
