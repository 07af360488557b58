"""What checking a split whole costs; prints JSON.

Writes one split of `--rows` rows with two `--kb`-sized JPEG-like images each (random bytes: the
checks never decode images), then times, best of `--repeat`:
  * `read_split` (manifest check, every shard's sha256, ids) against reading the same shards into
    records without any check (pyarrow rows -> `Record`, what reading did before the checks);
  * `split_digest` (what the harness planner computes per split) against reading the shard files'
    bytes once.

    python bench/bench_split_verify.py [--rows 1000] [--kb 60] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from builders.io import read_split, split_digest, split_dir, write_records
from builders.manifest import build_manifest
from builders.record import Record, make_idx
from builders.registry import load_registry


def _split(root: Path, rows: int, kb: int) -> Path:
    reg = load_registry()
    spec = reg.resolve("jigsaw")
    records = [Record(idx=make_idx(spec, "train", i), question=spec.question,
                      sub_task=spec.sub_task, images=[os.urandom(kb * 1024) for _ in range(2)],
                      choices=list(spec.choices), answer="(A)", prompt=spec.prompt,
                      explanation="", task=spec.name, split="train", source="{}")
               for i in range(1, rows + 1)]
    manifest = build_manifest(spec, reg, "train", 42, [], Counter(), {}, "jpeg")
    return write_records(records, split_dir(root, spec.name, "train"), manifest,
                         reg.defaults.shard_rows)


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--kb", type=int, default=60)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = _split(Path(tmp), args.rows, args.kb)
        shards = sorted(path.glob("data-*.parquet"))
        size = sum(s.stat().st_size for s in shards)
        checked = _best(lambda: read_split(path), args.repeat)
        bare = _best(lambda: [Record.from_row(r) for s in shards
                              for r in pq.read_table(s).to_pylist()], args.repeat)
        digest = _best(lambda: split_digest(path), args.repeat)
        raw = _best(lambda: [s.read_bytes() for s in shards], args.repeat)
    print(json.dumps({
        "rows": args.rows, "split_mb": round(size / 2**20, 1),
        "read_split_s": round(checked, 3), "unchecked_read_s": round(bare, 3),
        "read_split_over_unchecked": round(checked / bare, 2),
        "split_digest_s": round(digest, 3), "read_bytes_s": round(raw, 3),
        "split_digest_over_read_bytes": round(digest / raw, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
