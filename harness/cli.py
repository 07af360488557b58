"""The `harness` command (entry point; the implementation lands with its issue)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    print("harness: not implemented yet", file=sys.stderr)
    return 2
