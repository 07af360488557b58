"""Builder throughput on the miniature sources against the I/O floor; prints JSON.

For every task with a builder and a miniature source: build `--n` train examples (or as many as
the miniature allows), then time the floor for the same examples: decoding every raw source image
the examples used and encoding every rendered image once, the work no builder can avoid. The ratio
builder/floor says how much the builder adds on top (sampling, filters, drawing, Parquet, manifest).

    python bench/bench_builders.py [--n 40] [--tasks jigsaw localization]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path

from builders import miniature
from builders.build import BuildRequest, InsufficientCandidates, run_build
from builders.imaging import decode_bytes, encode_image, load_image
from builders.io import read_split
from builders.registry import load_registry


def _floor_seconds(records, dataset_root: Path, fmt: str, quality: int) -> float:
    """Decode each raw source image once per use, encode each rendered image once."""
    rendered = [decode_bytes(b) for r in records for b in r.images]
    raw = [dataset_root / p for r in records for p in r.source_dict["source_images"]]
    raw = [p for p in raw if p.is_file()]
    t0 = time.perf_counter()
    for p in raw:
        load_image(p)
    for im in rendered:
        encode_image(im, fmt, quality)
    return time.perf_counter() - t0


def _timed_build(name: str, root: Path, out: Path, n: int) -> tuple[float, Path]:
    t0 = time.perf_counter()
    path = run_build(BuildRequest(name, "train", root, out, n=n, progress=False))
    return time.perf_counter() - t0, path


def bench_task(name: str, roots: dict[str, Path], out: Path, n: int) -> dict:
    """Time a build of n examples and of 1 example: the difference is the per-example cost without
    the fixed start-up (reading annotations, listing files), which the miniature exaggerates."""
    reg = load_registry()
    spec = reg.resolve(name)
    root = roots[spec.source]
    while True:
        try:
            build_s, path = _timed_build(name, root, out / str(n), n)
            break
        except InsufficientCandidates:
            n //= 2
            if n < 2:
                return {"task": name, "error": "miniature too small"}
    startup_s, _ = _timed_build(name, root, out / "one", 1)
    records = read_split(path)
    d = reg.defaults
    floor_s = _floor_seconds(records, root, d.image_format, d.jpeg_quality)
    per_example = (build_s - startup_s) / (n - 1)
    return {
        "task": name,
        "n": n,
        "builder_examples_per_s": round(n / build_s, 2),
        "floor_examples_per_s": round(n / floor_s, 2),
        "ratio_builder_over_floor": round(build_s / floor_s, 2),
        "startup_s": round(startup_s, 3),
        "ratio_per_example_over_floor": round(per_example / (floor_s / n), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--tasks", nargs="*", default=None)
    args = ap.parse_args()
    reg = load_registry()
    have = set(miniature.sources())
    tasks = args.tasks or [
        s.name for s in reg.tasks.values()
        if s.source in have and importlib.util.find_spec(f"builders.tasks.{s.name}")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        roots = miniature.write_all(Path(tmp) / "sources")
        results = [bench_task(t, roots, Path(tmp) / "out" / t, args.n) for t in tasks]
    print(json.dumps({"benchmark": "builders", "results": results}, indent=2))


if __name__ == "__main__":
    main()
