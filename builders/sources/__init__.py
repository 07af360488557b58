"""Readers of raw datasets, one module per source (coco, hpatches, artbench, nights, ...).

Each module exposes `LAYOUT` (the expected on-disk layout, shown by `build-task --help` and in
errors) and `find_root(path) -> Path`, which accepts the dataset folder or its parent and raises
`SourceLayoutError` naming the layout when it is not there.
"""

from __future__ import annotations

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
