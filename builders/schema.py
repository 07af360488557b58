"""Typed configuration tables: the one check of what a table (or a set of options) may hold.

Owns `check_keys` (unknown keys, listing the valid ones) and `typed_table` (a dataclass from a
table: unknown keys, missing required keys and every value's type checked against the field's
annotation, TOML arrays turned into the tuples the annotation asks for). Every configuration of
the toolkit is read through them: `tasks.toml` `[defaults]`, `[tasks.<name>]` and each builder's
`[tasks.<name>.params]` (`builders.registry`), `[dedup]` (`dedup.config`), the harness's table
TOMLs, `[zero_shot]`, method overrides, `--executor-opt` and the run overrides.

`where` names the place for messages: a string ("harness/tables/table1.toml"), or a function of
the key (None for the table itself) that adds the file's line, as `builders.registry` does.
Errors are raised as the caller's own error class, so each tool reports them as it reports any
other bad input of its own.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
Where = str | Callable[[str | None], str]


def _place(where: Where, key: str | None = None) -> str:
    if callable(where):
        return where(key)
    return f"{where} {key}" if key and where else (key or where)


def check_keys(
    given: Iterable[str], valid: Iterable[str], where: Where, error: type[Exception] = ValueError,
    what: str = "key",
) -> None:
    """Raise `error` naming the first unknown key's place, every unknown key and the valid ones."""
    message = _unknown(given, list(valid), where, what)
    if message:
        raise error(message)


def _unknown(given: Iterable[str], valid: list[str], where: Where, what: str) -> str:
    unknown = sorted(set(given) - set(valid))
    if not unknown:
        return ""
    if callable(where):  # the place of the (first) unknown key, with its line
        head = f"{where(unknown[0])}: unknown {what}" + (
            f"s {', '.join(unknown)}" if len(unknown) > 1 else "")
    else:
        head = f"{where + ': ' if where else ''}unknown {what}(s) {', '.join(unknown)}"
    return f"{head}; valid {what}s: {', '.join(valid)}"


def _name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _convert(value: Any, hint: Any) -> tuple[bool, Any]:
    """(whether `value` fits `hint`, the value as the field holds it)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            ok, converted = _convert(value, arg)
            if ok:
                return True, converted
        return False, value
    if hint is type(None):
        return value is None, value
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args), value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if hint is str:
        return isinstance(value, str), value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            return False, value
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                return False, value
            items = list(zip(value, args))
        else:
            items = [(v, args[0] if args else Any) for v in value]
        converted = []
        for item, arg in items:
            ok, item = _convert(item, arg)
            if not ok:
                return False, value
            converted.append(item)
        return True, tuple(converted) if origin is tuple else converted
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            return False, value
        key_hint, value_hint = args or (Any, Any)
        out = {}
        for k, v in value.items():
            ok_k, _ = _convert(k, key_hint)
            ok_v, v = _convert(v, value_hint)
            if not (ok_k and ok_v):
                return False, value
            out[k] = v
        return True, out
    if isinstance(hint, type):
        return isinstance(value, hint), value
    raise TypeError(f"typed_table cannot check values of type {hint!r}")


def typed_table(
    cls: type[T], table: Mapping[str, Any], where: Where, error: type[Exception] = ValueError,
    given: Mapping[str, Any] | None = None,
) -> T:
    """`cls` (a dataclass) from `table`: no unknown key, every field without a default present,
    every value of its annotated type (an int is a float; a list is a tuple where the field is a
    tuple). `given` holds fields already built (nested tables), taken as they are."""
    if not isinstance(table, Mapping):
        raise error(f"{_place(where)}: must be a table, got {table!r}")
    given = dict(given or {})
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    missing = [name for name, f in fields.items()
               if name not in table and name not in given
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    problems = [_unknown(table, [k for k in fields if k not in given], where, "key")]
    if missing:  # with an unknown key, often the same key misspelt: both are named
        problems.append(f"{_place(where)} lacks {', '.join(missing)}; add "
                        f"{'it' if len(missing) == 1 else 'them'}")
    if any(problems):
        raise error("; and ".join(p for p in problems if p))
    hints = typing.get_type_hints(cls)
    values = dict(given)
    for key, value in table.items():
        ok, converted = _convert(value, hints[key])
        if not ok:
            raise error(f"{_place(where, key)} must be {_name(hints[key])}, got {value!r}")
        values[key] = converted
    return cls(**values)
