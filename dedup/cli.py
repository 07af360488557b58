"""The `dedup` command (entry point; the implementation lands with its issue)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    print("dedup: not implemented yet", file=sys.stderr)
    return 2
