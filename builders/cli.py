"""The `build-task` command: build one task's split (or every task's) from raw sources.

    build-task TASK --split {train,val,test} [--source-root DIR] [--out DIR] [--n N]
               [--seed 42] [--overwrite]

TASK is a registry name (`jigsaw`), a source alias (`hpatches`) or `all`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from builders.build import BuilderMissing, BuildRequest, InsufficientCandidates, run_build
from builders.io import SplitExistsError, read_manifest
from builders.registry import SPLITS, RegistryError, TaskSpec, load_registry
from builders.sources import SourceLayoutError


def split_source(spec: TaskSpec, split: str) -> str:
    """The raw source a (task, split) reads: BLINK for BLINK-tested test splits."""
    return "blink" if split == "test" and spec.test_source == "blink" else spec.source


def _source_root(given: Path | None, source: str, many: bool) -> Path:
    """One task: the given folder (default data/<source>). `all`: the given folder holds the
    datasets; `<folder>/<source>` is used when it exists, else the folder itself (each reader
    also finds its dataset's usual top folder inside the path it gets)."""
    if not many:
        return given or Path("data") / source
    base = given or Path("data")
    return base / source if (base / source).is_dir() else base


def excluded_sources(path: Path, task: str) -> frozenset[str]:
    """The source images to exclude for `task` from a dedup `flagged_sources.json` or a list."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"build-task: cannot read --exclude file {path}: {exc}") from exc
    if isinstance(doc, dict):
        doc = doc.get(task, {})
        doc = doc.get("source_images", []) if isinstance(doc, dict) else doc
    if not isinstance(doc, list) or not all(isinstance(x, str) for x in doc):
        raise SystemExit(f"build-task: --exclude file {path}: expected {{task: {{source_images: "
                         f"[paths]}}}} or a list of paths")
    return frozenset(doc)


def _layout(source: str) -> str:
    try:
        return importlib.import_module(f"builders.sources.{source}").LAYOUT
    except ModuleNotFoundError:
        return "    (no reader for this source in this version)\n"


def _epilog() -> str:
    reg = load_registry()
    lines = ["tasks (name, aliases -> source):"]
    for spec in reg.tasks.values():
        alias = f" [{', '.join(spec.aliases)}]" if spec.aliases else ""
        lines.append(f"  {spec.name}{alias} -> {spec.source}; test split from {spec.test_source}")
    lines.append("")
    lines.append("where each source is expected (--source-root points at the top folder shown;")
    lines.append("with TASK=all, --source-root holds one sub-folder per source, named as below):")
    sources = sorted({s.source for s in reg.tasks.values()} | {"blink"})
    for src in sources:
        lines.append(f"\n{src}:")
        lines.append(_layout(src).rstrip("\n"))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="build-task",
        description="Build BLINK-style multiple-choice splits (Parquet + manifest.json) for the "
        "LIVR tasks from the raw datasets.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("task", help="task name, source alias, or 'all'")
    p.add_argument("--split", required=True, choices=SPLITS)
    p.add_argument("--source-root", type=Path, default=None,
                   help="raw dataset folder (default: data/<source>; with 'all': data/)")
    p.add_argument("--out", type=Path, default=Path("built"), help="output root (default: built/)")
    p.add_argument("--n", type=int, default=None, help="build this many examples (default: paper size)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: tasks.toml, 42)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing split")
    p.add_argument("--exclude", type=Path, default=None, metavar="JSON",
                   help="skip examples using these source images: a dedup flagged_sources.json "
                   "({task: {source_images: [...]}}) or a JSON list of paths; with --overwrite "
                   "this refills a de-duplicated split to full size")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def _summary(path: Path) -> str:
    m = read_manifest(path)
    rej = ", ".join(f"{k} {v}" for k, v in m["rejected"].items()) or "none"
    ans = ", ".join(f"{k} {v}" for k, v in m["answer_counts"].items())
    warn = "".join(f"; warning: {k} x{v}" for k, v in m.get("warnings", {}).items())
    return f"{path}: {m['n']} examples; answers: {ans}; rejected candidates: {rej}{warn}"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    reg = load_registry()
    try:
        specs = list(reg.tasks.values()) if args.task == "all" else [reg.resolve(args.task)]
    except RegistryError as exc:
        print(f"build-task: {exc}", file=sys.stderr)
        return 2
    skipped: list[str] = []
    failed = False
    for spec in specs:
        if args.split not in spec.sizes:
            skipped.append(f"{spec.name}: has no {args.split} split")
            continue
        source = split_source(spec, args.split)
        root = _source_root(args.source_root, source, args.task == "all")
        req = BuildRequest(spec.name, args.split, root, args.out, args.n, args.seed,
                           args.overwrite, not args.no_progress,
                           excluded_sources(args.exclude, spec.name) if args.exclude else frozenset())
        try:
            path = run_build(req, reg)
        except (SourceLayoutError, BuilderMissing) as exc:
            if args.task != "all":
                print(f"build-task: {exc}", file=sys.stderr)
                return 2
            skipped.append(f"{spec.name}: {str(exc).splitlines()[0]}")
            continue
        except (SplitExistsError, InsufficientCandidates, RegistryError, ValueError) as exc:
            print(f"build-task: {exc}", file=sys.stderr)
            failed = True
            continue
        print(_summary(path))
    for s in skipped:
        print(f"skipped {s}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
