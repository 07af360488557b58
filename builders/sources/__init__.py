"""Readers of raw datasets, one module per source (coco, hpatches, artbench, nights, ...).

Each module exposes `LAYOUT` (the expected on-disk layout, shown by `build-task --help` and in
errors) and `find_root(path) -> Path`, which accepts the dataset folder or its parent and raises
`SourceLayoutError` naming the layout when it is not there.
"""

from __future__ import annotations

import csv
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


def read_csv_rows(path: Path, required: list[str], hint: str) -> list[dict[str, str]]:
    """Rows of a headed csv keyed by column NAME (names stripped; order and extra columns free,
    values stripped, a BOM tolerated). A missing required column raises `CsvFormatError` naming the
    file, the missing and the found columns, and `hint` (how to get a good file)."""
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
        return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
