"""Compare a built split against a reference manifest (ids, answers, image hashes).

    python -m builders.verify built/jigsaw/train manifests/jigsaw/train.json

The built split is first checked whole against its own manifest (every shard present, of the
recorded size and sha256, no extra file): a damaged split is not compared, it is an error (exit 2)
naming the split and the fix. Then exit 0 when the rebuild is bit-identical in everything the
reference manifest records, 1 otherwise (the first differences are printed). Registry hash and
package version are reported but not required to match: a rebuild with another version that
produces the same bytes is still identical. The reference is a manifest file or a split folder.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from builders.io import SplitDamagedError, SplitNotFoundError, read_manifest, verify_split


def differences(built: dict[str, Any], ref: dict[str, Any], limit: int = 10) -> list[str]:
    out = []
    for key in ("task", "split", "seed", "n"):
        if built.get(key) != ref.get(key):
            out.append(f"{key}: built {built.get(key)!r} vs reference {ref.get(key)!r}")
    for b, r in zip(built["records"], ref["records"]):
        if b != r:
            out.append(f"{r['idx']}: built {b} vs reference {r}")
        if len(out) >= limit:
            break
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m builders.verify BUILT_SPLIT_DIR REFERENCE_MANIFEST", file=sys.stderr)
        return 2
    try:
        built = verify_split(Path(args[0]), content=True)
        ref = read_manifest(Path(args[1]))
    except (SplitDamagedError, SplitNotFoundError, OSError) as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return 2
    for key in ("tasks_toml_sha256", "package_version", "source_fingerprint"):
        if built.get(key) != ref.get(key):
            print(f"note: {key} differs ({built.get(key)} vs {ref.get(key)})")
    diffs = differences(built, ref)
    for d in diffs:
        print(d)
    print("identical" if not diffs else f"{len(diffs)}+ differences")
    return 0 if not diffs else 1


if __name__ == "__main__":
    raise SystemExit(main())
