"""The task registry: loads `tasks.toml` into typed `TaskSpec`s and resolves names and aliases.

`tasks.toml` (repository root) is the only place task numbers live; this module owns reading it,
validating it and hashing it for manifests. Set `LIVR_TASKS_TOML` to use another registry file.
Every problem with the file is a `RegistryError` naming the file, the line and the key (a TOML
syntax error; an unknown, missing or mistyped key of `[defaults]`, `[tasks.<name>]` or
`[tasks.<name>.params]`), raised when the file is loaded, before anything is built.

Builder parameters are typed by their builder: each `builders/tasks/<task>.py` declares a
`Params` dataclass (its keys, their types, which are optional), extending `BuilderParams` (the
keys any task may set, read by the build driver and the harness). Loading checks every task's
`[tasks.<name>.params]` against its builder's `Params`, importing the builder modules to find
them (`check_params=False` skips that: `build-task --help` lists the tasks without importing
them). `Places` names places in the file for messages; `builders.schema` does the checking.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from builders.schema import check_keys, typed_table

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

class RegistryError(ValueError):
    """The registry file is malformed or a task name is unknown."""


@dataclass(frozen=True)
class Defaults:
    """`[defaults]`: every key required (tasks.toml holds the values and their reasons)."""

    seed: int
    image_format: Literal["jpeg", "png"]
    jpeg_quality: int
    shard_rows: int
    max_image_pixels: int


@dataclass(frozen=True, kw_only=True)
class BuilderParams:
    """Parameters any task may set in `[tasks.<name>.params]`; a builder's `Params` adds its own.

    Absent means: the registry's `[defaults] image_format`, the harness's own answer budget, no
    metrics beyond accuracy."""

    image_format: Literal["jpeg", "png"] | None = None  # overrides [defaults] for this task
    max_new_tokens: int | None = None  # the harness's generation budget for long answers
    extra_metrics: tuple[str, ...] = ()  # harness.benchmarks: metrics beside pooled accuracy


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


class Places:
    """Names places in one registry file for error messages: `<file>, line N: [table] key`."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text

    def __call__(self, table: str, key: str | None = None) -> str:
        line = _line_of(self.text, table, key)
        at = f", line {line}" if line else ""
        return f"{self.path}{at}: [{table}]" + (f" {key}" if key else "")

    def of(self, table: str) -> Callable[[str | None], str]:
        """The places of one table's keys, as `builders.schema` asks for them."""
        return lambda key: self(table, key)


class Params(dict):
    """A task's builder parameters as `tasks.toml` gives them (checked against the builder's
    `Params` at load). Reading an optional key the file leaves out is a `RegistryError` naming
    the file, the table and the key (not a bare KeyError): use `.get` for those."""

    where: str = ""

    def __missing__(self, key: str) -> Any:
        raise RegistryError(f"{self.where} lacks the builder parameter {key!r}; add it (see the "
                            f"repository's tasks.toml for its meaning and default)")


@dataclass(frozen=True)
class TaskSpec:
    """One `[tasks.<name>]` table; the keys are documented at the top of tasks.toml."""

    name: str
    label: str  # the paper's short column name in reports ("Loc")
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
    aliases: tuple[str, ...] = ()
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

    def builder_module(self, split: str | None = None) -> str:
        """The module that builds `split` (the task's own builder when None): BLINK's
        pass-through for BLINK-tested test splits, `builders.tasks.<name>` otherwise."""
        blink = split == "test" and self.test_source == "blink"
        return f"builders.tasks.{'blink_test' if blink else self.name}"

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


def _task_from_table(name: str, table: Any, where: Places) -> TaskSpec:
    at = f"tasks.{name}"
    if not isinstance(table, dict):
        raise RegistryError(f"{where(at)} must be a table ([{at}]), got {table!r}")
    if not isinstance(table.get("params", {}), dict):
        raise RegistryError(f"{where(at, 'params')} must be a table ([{at}.params])")
    params = Params(table.get("params", {}))
    params.where = where(f"{at}.params")
    spec = typed_table(TaskSpec, {k: v for k, v in table.items() if k != "params"},
                       where.of(at), RegistryError, given={"name": name, "params": params})
    if spec.answer_type not in ANSWER_TYPES:
        raise RegistryError(f"{where(at, 'answer_type')} must be one of "
                            f"{', '.join(map(repr, ANSWER_TYPES))}, got {spec.answer_type!r}")
    if not 0 <= spec.num_options <= len(LETTERS):
        raise RegistryError(f"{where(at, 'num_options')} must be 0..{len(LETTERS)}")
    if spec.answer_type == "mcq" and len(spec.choices) != spec.num_options:
        raise RegistryError(
            f"{where(at, 'choices')} has {len(spec.choices)} choices but num_options = "
            f"{spec.num_options}"
        )
    check_keys(spec.sizes, SPLITS, where(at, "sizes"), RegistryError, what="split")
    for split, size in spec.sizes.items():
        if size <= 0:
            raise RegistryError(f"{where(at, 'sizes')} {split} must be a positive integer, "
                                f"got {size!r}")
    return replace(spec, aliases=tuple(a.lower() for a in spec.aliases))


def builder_params(spec: TaskSpec) -> type[BuilderParams] | None:
    """The `Params` its builder module declares for `spec`'s own splits; None when this version
    has no builder for the task (building it is then refused with `BuilderMissing`)."""
    name = spec.builder_module()
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None
    return module.Params


def _check_params(spec: TaskSpec, where: Places) -> None:
    """`[tasks.<name>.params]` against the builder's `Params`: unknown keys (a misspelt one),
    missing required keys and wrong types, each named with its line."""
    schema = builder_params(spec)
    if schema is not None:
        typed_table(schema, spec.params, where.of(f"tasks.{spec.name}.params"), RegistryError)


def _defaults(doc: dict[str, Any], where: Places) -> Defaults:
    defaults = typed_table(Defaults, doc.get("defaults", {}), where.of("defaults"),
                           RegistryError)
    if defaults.shard_rows <= 0:
        raise RegistryError(f"{where('defaults', 'shard_rows')} must be positive")
    return defaults


@lru_cache(maxsize=8)
def _load(path: Path, check_params: bool) -> Registry:
    if check_params:  # the same tables, read once: only the builders' parameters are added
        registry = _load(path, False)
        where = Places(path, registry.path.read_text(encoding="utf-8"))
        for spec in registry.tasks.values():
            _check_params(spec, where)
        return registry
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
    where = Places(path, text)
    defaults = _defaults(doc, where)
    tasks_table = doc.get("tasks", {})
    if not isinstance(tasks_table, dict):
        raise RegistryError(f"{where('tasks')} must be a table of [tasks.<name>] tables")
    tasks = {name: _task_from_table(name, t, where) for name, t in tasks_table.items()}
    return Registry(path=path, sha256=hashlib.sha256(raw).hexdigest(), defaults=defaults, tasks=tasks)


def load_registry(
    path: str | os.PathLike | None = None, check_params: bool = True
) -> Registry:
    """The registry at `path`, `$LIVR_TASKS_TOML`, or the repository's `tasks.toml`, checked
    whole (with `check_params=False`, all but the builder parameters: nothing is imported)."""
    chosen = path or os.environ.get(REGISTRY_ENV) or DEFAULT_REGISTRY
    return _load(Path(chosen).resolve(), check_params)


def get_task(name: str) -> TaskSpec:
    return load_registry().resolve(name)
