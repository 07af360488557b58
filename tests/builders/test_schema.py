"""The one check every configuration table goes through (`builders.schema`): unknown keys with
the valid ones, missing keys, value types (with TOML's lists made tuples, ints taken as floats,
bools never taken as ints), and the place (file, line, key) in every message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from builders.schema import check_keys, typed_table


@dataclass(frozen=True)
class Example:
    count: int
    rate: float
    names: tuple[str, ...] = ()
    weights: dict[str, tuple[int, ...]] | None = None
    style: Literal["blink", "lvr"] = "blink"
    flag: bool = False


def _where(key: str | None) -> str:
    return "tasks.toml, line 7: [t]" + (f" {key}" if key else "")


def test_values_are_typed_and_converted():
    got = typed_table(Example, {"count": 3, "rate": 1, "names": ["a", "b"],
                                "weights": {"train": [1, 2]}, "style": "lvr", "flag": True},
                      _where)
    assert got == Example(3, 1.0, ("a", "b"), {"train": (1, 2)}, "lvr", True)
    assert isinstance(got.rate, float)


@pytest.mark.parametrize(("table", "message"), [
    ({"count": True, "rate": 1.0}, "[t] count must be int, got True"),
    ({"count": 1, "rate": "fast"}, "[t] rate must be float, got 'fast'"),
    ({"count": 1, "rate": 1.0, "names": ["a", 2]}, "[t] names must be tuple[str, ...]"),
    ({"count": 1, "rate": 1.0, "style": "lvm"}, "[t] style must be Literal['blink', 'lvr']"),
    ({"count": 1, "rate": 1.0, "weights": {"train": [1, "x"]}}, "[t] weights must be"),
    ({"count": 1, "rat": 1.0},
     ("tasks.toml, line 7: [t] rat: unknown key; valid keys: count, rate, names, weights, "
      "style, flag; and tasks.toml, line 7: [t] lacks rate; add it")),
    ({"count": 1}, "[t] lacks rate; add it"),
])
def test_bad_tables_name_the_place_and_the_fix(table, message):
    with pytest.raises(ValueError) as err:
        typed_table(Example, table, _where)
    assert message in str(err.value)
    assert str(err.value).startswith("tasks.toml, line 7: [t]")


def test_the_callers_error_class_and_a_plain_place():
    class MyError(ValueError):
        pass

    with pytest.raises(MyError, match=r"^harness/tables/x.toml: unknown key\(s\) a, b; valid "
                                      r"keys: title, rows$"):
        check_keys({"b": 1, "a": 2, "title": 3}, ("title", "rows"), "harness/tables/x.toml",
                   MyError)
    with pytest.raises(MyError, match=r"^unknown override\(s\) seeds; valid overrides: seed$"):
        check_keys(["seeds"], ["seed"], "", MyError, what="override")
    check_keys(["seed"], ["seed"], "", MyError)  # nothing unknown: no error
