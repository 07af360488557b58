"""Readers of raw datasets, one module per source (coco, hpatches, artbench, nights, ...).

Each module exposes `LAYOUT` (the expected on-disk layout, shown by `build-task --help` and in
errors), `LICENSE` (the licence note the dataset card prints for it) and `find_root(path) -> Path`,
which accepts the dataset folder or its parent and raises `SourceLayoutError` naming the layout
when it is not there.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path


class SourceLayoutError(FileNotFoundError):
    """A source root is missing or does not have the expected layout."""

    def __init__(self, source: str, root: Path, problem: str, layout: str) -> None:
        super().__init__(
            f"{source}: {problem} under {root}.\nExpected layout:\n{layout.rstrip()}\n"
            f"Point --source-root at the folder shown at the top of this layout."
        )


def locate(root: Path, marker: str, names: tuple[str, ...] = ()) -> Path | None:
    """`root` itself or one of its children `names` when `marker` exists inside it."""
    root = Path(root)
    for cand in (root, *(root / n for n in names)):
        if (cand / marker).exists():
            return cand
    return None


class CsvFormatError(ValueError):
    """A metadata csv as a whole is unusable (e.g. a required column is missing)."""


class CsvRows(list):
    """The rows of a csv (a list), and how many rows repeated an earlier row's key and were
    dropped (`duplicates`, for the builder to count; the first occurrence is kept)."""

    duplicates: int = 0


def read_csv_rows(path: Path, required: list[str], hint: str,
                  key: Sequence[str] | None = None) -> CsvRows:
    """Rows of a headed csv keyed by column NAME (names stripped; order and extra columns free,
    values stripped, a BOM tolerated). A missing required column raises `CsvFormatError` naming the
    file, the missing and the found columns, and `hint` (how to get a good file). With `key`, a row
    whose values in those columns repeat an earlier row is dropped and counted (`duplicates`)."""
    with Path(path).open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in required if c not in header]
        if missing:
            raise CsvFormatError(
                f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header) or 'no header'}); "
                f"columns are matched by exact name. {hint}"
            )
        reader.fieldnames = header
        rows = CsvRows()
        seen: set[tuple[str, ...]] = set()
        for raw in reader:
            row = {k: (v or "").strip() for k, v in raw.items() if k is not None}
            if key is not None:
                ident = tuple(row.get(c, "") for c in key)
                if ident in seen:
                    rows.duplicates += 1
                    continue
                seen.add(ident)
            rows.append(row)
        return rows
