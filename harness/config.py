"""Table configs: the shipped TOML files (`harness/tables/`), CLI-style overrides, validation.

Owns `Row`, `Section`, `Delta`, `TableConfig`, `Overrides`, `ConfigError`, `table_names` and
`load_table`.

Training modes: "single" (one model per task), "mixture" (one model on all tasks, evaluated on
each) and "transfer" (one model trained on the task `train_set`, evaluated on every task: the
generalisation tables; `train_set_source` says in words where that training data comes from).
Reported rows (`[reported]`: name = source) are rows the toolkit does not run, such as the GRPO
methods the paper quotes: the report prints the paper's numbers for them, marked "reported".
Every name (backbone, task, method, config key, method field) is checked here, and an error names
the valid choices, so nothing starts with a typo in it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from builders.registry import RegistryError, load_registry
from builders.schema import check_keys
from harness.errors import ConfigError, MethodError, ProtocolError
from harness.methods import METHODS, MethodSpec, get_method, scale_epochs
from harness.protocol import ZeroShotProtocol
from livr_core.backbones import BACKBONES
from livr_core.configs import SEED

TABLES_DIR = Path(__file__).resolve().parent / "tables"
TOP_KEYS = (
    "title", "training", "mixture", "checkpoint", "train_per_task", "backbones", "tasks",
    "methods", "sections", "delta", "paper", "method_overrides", "train_set", "train_set_source",
    "reported", "zero_shot",
)
SECTION_KEYS = ("title", "rows")
DELTA_KEYS = ("method", "base", "label")
TRAINING = ("single", "mixture", "transfer")
CHECKPOINTS = ("best", "final")



@dataclass(frozen=True)
class Row:
    method: str
    label: str


@dataclass(frozen=True)
class Section:
    title: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Delta:
    """A difference row ("Delta vs SFT") printed under `method`'s row: method minus base."""

    method: str
    base: str
    label: str


@dataclass(frozen=True)
class Overrides:
    """What the `run` command line may change (None = keep the table's value)."""

    backbones: tuple[str, ...] | None = None
    tasks: tuple[str, ...] | None = None
    methods: tuple[str, ...] | None = None
    epochs: int | None = None  # total epochs per trained method (stage split kept in proportion)
    lr: float | None = None  # learning rate of every trained method (both stages)
    limit: int | None = None  # at most this many examples of every split of every task
    seed: int | None = None  # every cell's training seed (default: livr_core's, the paper's 42)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Overrides:
        check_keys(values, [f.name for f in fields(cls)], "", ConfigError, what="override")
        tupled = {"backbones", "tasks", "methods"}
        return cls(**{
            k: (tuple(v) if k in tupled and v is not None else v) for k, v in values.items()
        })


@dataclass(frozen=True)
class TableConfig:
    """A resolved table: every name valid, overrides applied, methods with their final fields."""

    name: str
    title: str
    training: Literal["single", "mixture"]
    mixture: str | None
    train_per_task: int | None
    backbones: tuple[str, ...]
    tasks: tuple[str, ...]
    methods: dict[str, MethodSpec]  # in row order
    sections: tuple[Section, ...]
    delta: Delta | None
    paper: str
    limit: int | None
    source: Path
    seed: int = SEED  # every cell's training seed (`CellConfig.seed`)
    train_set: str | None = None  # transfer: the task whose train / val splits every cell trains on
    train_set_source: str = ""  # transfer: where that training data comes from, in words
    reported: dict[str, str] = field(default_factory=dict)  # row name -> source of its numbers
    zero_shot: ZeroShotProtocol = field(default_factory=ZeroShotProtocol)  # untrained methods

    def cell_task(self, task: str) -> str:
        """The cell that holds `task`'s results: the task's own, the mixture's or the train set's."""
        if self.training == "transfer":
            return self.train_set  # type: ignore[return-value]
        return self.mixture if self.mixture is not None else task

    def cell_tasks(self) -> tuple[str, ...]:
        """The task keys of the cells: each task, the one mixture, or the one train set."""
        return tuple(dict.fromkeys(self.cell_task(t) for t in self.tasks))

    def eval_tasks(self, cell_task: str) -> tuple[str, ...]:
        """The tasks a cell evaluates: its own task, or all of the table's."""
        return (cell_task,) if self.training == "single" else self.tasks

    def train_tasks(self, cell_task: str) -> tuple[str, ...]:
        """The tasks whose train / val splits a (trained) cell learns from."""
        if self.training == "transfer":
            return (self.train_set,)  # type: ignore[return-value]
        return self.eval_tasks(cell_task)


def table_names() -> list[str]:
    return sorted(p.stem for p in TABLES_DIR.glob("*.toml"))


def _table_path(name_or_path: str | os.PathLike) -> Path:
    text = str(name_or_path)
    if text.endswith(".toml") or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"no table config at {path}")
        return path
    name = f"table{text}" if text.isdigit() else text
    path = TABLES_DIR / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(
            f"unknown table {text!r}; valid: {', '.join(table_names())} (or 1-4, or a .toml path)"
        )
    return path


def _choice(value: Any, valid: Iterable[str], what: str, where: str) -> str:
    valid = tuple(valid)
    if value not in valid:
        raise ConfigError(f"{where}: unknown {what} {value!r}; valid: {', '.join(valid)}")
    return value


def _backbones(names: Iterable[str], where: str) -> tuple[str, ...]:
    return tuple(_choice(n, BACKBONES, "backbone", where) for n in names)


def _tasks(names: Iterable[str], where: str) -> tuple[str, ...]:
    registry = load_registry()
    out = []
    for n in names:
        try:
            out.append(registry.resolve(n).name)
        except RegistryError:
            raise ConfigError(
                f"{where}: unknown task {n!r}; valid (aliases in parentheses): "
                f"{registry.describe_names()}"
            ) from None
    return tuple(dict.fromkeys(out))


def _reported(doc: Mapping[str, Any], paper: str, where: str) -> dict[str, str]:
    """The table's reported rows (name -> source), each with the paper's numbers to print."""
    from harness.paper import PAPER  # the paper's numbers: a small module, imported on use

    table = doc.get("reported", {})
    if not isinstance(table, Mapping) or not all(isinstance(v, str) for v in table.values()):
        raise ConfigError(f"{where}: [reported] maps a row name to the source of its numbers "
                          "(name = \"source\")")
    for name in table:
        if name in METHODS:
            raise ConfigError(f"{where} [reported]: {name!r} is a method this toolkit runs; "
                              "give reported rows names of their own")
        if not any(k[0] == paper and k[2] == name for k in PAPER):
            raise ConfigError(f"{where} [reported]: harness/paper.py has no {paper!r} row "
                              f"{name!r}; add the paper's numbers there")
    return dict(table)


def _method(name: str, where: str) -> MethodSpec:
    try:
        return get_method(name)
    except MethodError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _sections(
    doc: Mapping[str, Any], where: str, reported: Mapping[str, str]
) -> tuple[Section, ...]:
    if "sections" in doc and "methods" in doc:
        raise ConfigError(f"{where}: give `methods` or `sections`, not both")
    if "sections" not in doc:
        names = doc.get("methods") or []
        if not names:
            raise ConfigError(f"{where}: `methods` (or `sections`) is required")
        return (Section("", tuple(Row(n, _method(n, where).label) for n in names)),)
    out = []
    for i, sec in enumerate(doc["sections"]):
        check_keys(sec, SECTION_KEYS, f"{where} [[sections]] #{i + 1}", ConfigError)
        rows = []
        for row in sec.get("rows", []):
            if len(row) != 2:
                raise ConfigError(f"{where}: a section row is [method, label], got {row!r}")
            if row[0] not in reported:
                _method(row[0], where)
            rows.append(Row(str(row[0]), str(row[1])))
        out.append(Section(str(sec.get("title", "")), tuple(rows)))
    return tuple(out)


def _train_set(doc: Mapping[str, Any], training: str, where: str) -> tuple[str | None, str]:
    """(train_set, train_set_source) of a transfer table; neither belongs to another mode."""
    if training != "transfer":
        if "train_set" in doc or "train_set_source" in doc:
            raise ConfigError(f"{where}: `train_set` / `train_set_source` are for, and only for, "
                              "training = \"transfer\"")
        return None, ""
    if not doc.get("train_set") or not str(doc.get("train_set_source", "")).strip():
        raise ConfigError(f"{where}: training = \"transfer\" needs `train_set` (the task whose "
                          "train / val splits every cell trains on) and `train_set_source` (where "
                          "that data comes from, in words)")
    (name,) = _tasks([doc["train_set"]], f"{where} train_set")
    if "train" not in load_registry().resolve(name).sizes:
        raise ConfigError(f"{where}: train_set {name!r} has no train split in tasks.toml")
    return name, str(doc["train_set_source"]).strip()


def _delta(doc: Mapping[str, Any], where: str) -> Delta | None:
    if "delta" not in doc:
        return None
    table = doc["delta"]
    check_keys(table, DELTA_KEYS, f"{where} delta", ConfigError)
    if set(table) != set(DELTA_KEYS):
        raise ConfigError(f"{where}: delta needs {', '.join(DELTA_KEYS)}")
    _method(table["method"], f"{where} delta")
    _method(table["base"], f"{where} delta")
    return Delta(table["method"], table["base"], str(table["label"]))


def _select_rows(sections: tuple[Section, ...], methods: tuple[str, ...]) -> tuple[Section, ...]:
    """Keep the rows of the selected methods; selected methods without a row get their own."""
    kept = tuple(
        Section(s.title, tuple(r for r in s.rows if r.method in methods)) for s in sections
    )
    kept = tuple(s for s in kept if s.rows)
    placed = {r.method for s in kept for r in s.rows}
    extra = tuple(Row(m, get_method(m).label) for m in methods if m not in placed)
    return kept + ((Section("", extra),) if extra else ())


def _resolve_method(
    name: str, doc: Mapping[str, Any], checkpoint: str | None, overrides: Overrides, where: str
) -> MethodSpec:
    method = _method(name, where)
    changes = dict(doc.get("method_overrides", {}).get(name, {}))
    if checkpoint is not None and method.trained:
        changes.setdefault("checkpoint", checkpoint)
    if overrides.lr is not None and method.trained:
        changes["lr"] = overrides.lr  # the command line wins over the table's method_overrides
    try:
        method = method.with_changes(**changes) if changes else method
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where} [method_overrides.{name}]: {exc}") from None
    try:
        return scale_epochs(method, overrides.epochs) if overrides.epochs is not None else method
    except MethodError as exc:
        raise ConfigError(str(exc)) from None


def load_table(
    name_or_path: str | os.PathLike, overrides: Overrides | Mapping[str, Any] | None = None
) -> TableConfig:
    """The table `name_or_path` ("1".."4", "table1", "mirage" or a .toml path) with `overrides`."""
    if not isinstance(overrides, Overrides):
        overrides = Overrides.from_mapping(overrides or {})
    if overrides.limit is not None and overrides.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {overrides.limit}")
    if overrides.epochs is not None and overrides.epochs < 1:
        raise ConfigError(f"--epochs must be >= 1, got {overrides.epochs}")
    if overrides.lr is not None and not overrides.lr > 0:
        raise ConfigError(f"--lr must be > 0, got {overrides.lr}")
    path = _table_path(name_or_path)
    where = str(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    check_keys(doc, TOP_KEYS, where, ConfigError)
    training = _choice(doc.get("training", "single"), TRAINING, "training", where)
    checkpoint = doc.get("checkpoint")
    if checkpoint is not None:
        _choice(checkpoint, CHECKPOINTS, "checkpoint", where)
    mixture = doc.get("mixture")
    if (training == "mixture") != (mixture is not None):
        raise ConfigError(f"{where}: `mixture` (a cell name) is required for, and only for, "
                          "training = \"mixture\"")
    for key in ("backbones", "tasks"):
        if not doc.get(key):
            raise ConfigError(f"{where}: `{key}` is required")
    for name in doc.get("method_overrides", {}):
        _method(name, f"{where} [method_overrides]")

    backbones = _backbones(overrides.backbones or doc["backbones"], "backbones")
    tasks = _tasks(overrides.tasks or doc["tasks"], "tasks")
    paper = str(doc.get("paper", path.stem))
    reported = _reported(doc, paper, where)
    train_set, train_set_source = _train_set(doc, training, where)
    sections = _sections(doc, where, reported)
    unplaced = sorted(set(reported) - {r.method for sec in sections for r in sec.rows})
    if unplaced:
        raise ConfigError(f"{where}: reported row(s) {', '.join(unplaced)} appear in no section")
    if overrides.methods is not None:
        for m in overrides.methods:
            if m not in reported:
                _method(m, "methods")
        sections = _select_rows(sections, tuple(dict.fromkeys(overrides.methods)))
    names = dict.fromkeys(r.method for s in sections for r in s.rows if r.method not in reported)
    methods = {
        n: _resolve_method(n, doc, checkpoint, overrides, where) for n in names
    }
    delta = _delta(doc, where)
    try:
        zero_shot = ZeroShotProtocol.from_mapping(doc.get("zero_shot", {}), f"{where} [zero_shot]")
    except ProtocolError as exc:
        raise ConfigError(str(exc)) from None
    if delta is not None and not {delta.method, delta.base} <= set(methods):
        delta = None  # a filtered table may lack one of the two rows
    return TableConfig(
        name=path.stem,
        title=str(doc.get("title", path.stem)),
        training=training,  # type: ignore[arg-type]
        mixture=mixture,
        train_per_task=doc.get("train_per_task"),
        backbones=backbones,
        tasks=tasks,
        methods=methods,
        sections=sections,
        delta=delta,
        paper=paper,
        limit=overrides.limit,
        source=path,
        **({} if overrides.seed is None else {"seed": overrides.seed}),
        train_set=train_set,
        train_set_source=train_set_source,
        reported={k: v for k, v in reported.items()
                  if any(r.method == k for sec in sections for r in sec.rows)},
        zero_shot=zero_shot,
    )
