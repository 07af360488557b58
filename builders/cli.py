"""The `build-task` command: build one task's split (or every task's) from raw sources.

    build-task TASK --split {train,val,test} [--source-root DIR] [--out DIR] [--n N]
               [--seed N] [--overwrite] [--exclude flagged_sources.json] [--no-progress]

TASK is a registry name (`jigsaw`), a source alias (`hpatches`) or `all`. Exit status: 0 every
requested split was built; 1 some failed (or, with `all`, nothing was built); 2 bad input
(unknown task, broken tasks.toml, unusable --out or --exclude, a source missing).

The arguments are parsed before anything heavy is imported: `--help` reads tasks.toml (without
importing the builders) and each source reader's `LAYOUT` text, and `--version` nothing more.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from builders import package_version
from builders.registry import SPLITS, Registry, RegistryError, load_registry

if TYPE_CHECKING:
    from builders.build import BuildRequest


class UsageError(ValueError):
    """A command-line value that cannot be used (the message names it and the fix)."""


def _source_root(given: Path | None, source: str, many: bool) -> Path:
    """One task: the given folder (default data/<source>). `all`: the given folder holds the
    datasets; `<folder>/<source>` is used when it exists, else the folder itself (each reader
    also finds its dataset's usual top folder inside the path it gets)."""
    if not many:
        return given or Path("data") / source
    base = given or Path("data")
    return base / source if (base / source).is_dir() else base


def _exclusion_doc(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read --exclude file {path}: {exc}") from exc


def excluded_sources(path: Path, task: str) -> frozenset[str]:
    """The source images to exclude for `task` from a dedup `flagged_sources.json` or a list."""
    doc = _exclusion_doc(path)
    if isinstance(doc, dict):
        doc = doc.get(task, {})
        doc = doc.get("source_images", []) if isinstance(doc, dict) else doc
    if not isinstance(doc, list) or not all(isinstance(x, str) for x in doc):
        raise UsageError(f"--exclude file {path}: expected {{task: {{source_images: [paths]}}}} "
                         f"or a list of paths")
    return frozenset(doc)


def check_exclusion(path: Path, task: str, target: Path) -> None:
    """Refuse an --exclude file that does not come from the de-duplication of the split it is
    about to replace: the split's manifest lists the ids dedup removed, the file must list the
    same (else a refill would bring back examples removed after the file was written). The split
    is checked whole first."""
    from builders.io import verify_split

    if not target.exists():
        return
    manifest = verify_split(target, content=True)
    removed_now = {e["idx"] for e in (manifest.get("dedup") or {}).get("removed", [])}
    doc = _exclusion_doc(path)
    entry = doc.get(task) if isinstance(doc, dict) else None
    listed = entry.get("removed") if isinstance(entry, dict) else None
    if not isinstance(listed, dict):
        if removed_now:
            raise UsageError(
                f"--exclude {path} does not list which ids dedup removed from {target} (a plain "
                f"list, or a flagged_sources.json of an older version), so it cannot be checked "
                f"against the {len(removed_now)} removal(s) recorded there; use the "
                f"flagged_sources.json of the latest dedup run")
        return
    in_file = set(listed.get(target.name, []))
    if in_file != removed_now:
        raise UsageError(
            f"--exclude {path} was not written by the de-duplication of {target}: the split "
            f"records {len(removed_now)} removed id(s), the file {len(in_file)} "
            f"({len(removed_now - in_file)} missing from the file, {len(in_file - removed_now)} "
            f"unknown to the split). Re-run dedup on this split, then refill with its new "
            f"flagged_sources.json")


def _layout(source: str) -> str:
    try:
        return importlib.import_module(f"builders.sources.{source}").LAYOUT
    except ModuleNotFoundError:
        return "    (no reader for this source in this version)\n"


def _epilog(reg: Registry) -> str:
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


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """Lists the tasks and where each source is expected, read only when help is printed."""

    def format_help(self) -> str:
        if self.epilog is None:
            try:
                self.epilog = _epilog(load_registry(check_params=False))
            except RegistryError as exc:  # --help still works with a broken registry
                self.epilog = f"(tasks.toml cannot be read: {exc})"
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="build-task",
        description="Build BLINK-style multiple-choice splits (Parquet + manifest.json) for the "
        "LIVR tasks from the raw datasets.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    p.add_argument("task", help="task name, source alias, or 'all'")
    p.add_argument("--split", required=True, choices=SPLITS, help="which split to build")
    p.add_argument("--source-root", type=Path, default=None,
                   help="raw dataset folder (default: data/<source>; with 'all': data/)")
    p.add_argument("--out", type=Path, default=Path("built"), help="output root (default: built/)")
    p.add_argument("--n", type=positive_int, default=None,
                   help="build this many examples (default: paper size)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed of the sample (default: tasks.toml [defaults] seed)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing split")
    p.add_argument("--exclude", type=Path, default=None, metavar="JSON",
                   help="skip examples using these source images: a dedup flagged_sources.json "
                   "({task: {source_images: [...]}}) or a JSON list of paths; with --overwrite "
                   "this refills a de-duplicated split to full size")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def _summary(path: Path) -> str:
    from builders.io import read_manifest

    m = read_manifest(path)
    rej = ", ".join(f"{k} {v}" for k, v in m["rejected"].items()) or "none"
    ans = ", ".join(f"{k} {v}" for k, v in m["answer_counts"].items())
    warn = "".join(f"; warning: {k} x{v}" for k, v in m.get("warnings", {}).items())
    return f"{path}: {m['n']} examples; answers: {ans}; rejected candidates: {rej}{warn}"


def _request(args: argparse.Namespace, reg: Registry, spec_name: str) -> BuildRequest:
    from builders.build import BuildRequest
    from builders.io import split_dir

    spec = reg.resolve(spec_name)
    root = _source_root(args.source_root, spec.source_for(args.split), args.task == "all")
    exclude = frozenset()
    if args.exclude:
        check_exclusion(args.exclude, spec.name, split_dir(args.out, spec.name, args.split))
        exclude = excluded_sources(args.exclude, spec.name)
    return BuildRequest(spec.name, args.split, root, args.out, args.n, args.seed, args.overwrite,
                        not args.no_progress, exclude)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from builders.build import BuilderMissing, InsufficientCandidates, run_build
    from builders.io import OutputError, SplitDamagedError, SplitExistsError, SplitNotFoundError
    from builders.sources import SourceLayoutError

    try:
        reg = load_registry()
    except RegistryError as exc:
        print(f"build-task: {exc}", file=sys.stderr)
        return 2
    try:
        specs = list(reg.tasks.values()) if args.task == "all" else [reg.resolve(args.task)]
    except RegistryError as exc:
        print(f"build-task: {exc}", file=sys.stderr)
        return 2
    skipped: list[str] = []
    failed = False
    built = 0
    for spec in specs:
        if args.split not in spec.sizes:
            skipped.append(f"{spec.name}: has no {args.split} split")
            continue
        try:
            path = run_build(_request(args, reg, spec.name), reg)
        except (SourceLayoutError, BuilderMissing) as exc:
            if args.task != "all":
                print(f"build-task: {exc}", file=sys.stderr)
                return 2
            skipped.append(f"{spec.name}: {str(exc).splitlines()[0]}")
            continue
        except (OutputError, UsageError, SplitDamagedError, SplitNotFoundError) as exc:
            print(f"build-task: {exc}", file=sys.stderr)
            return 2
        except (SplitExistsError, InsufficientCandidates, RegistryError, ValueError) as exc:
            print(f"build-task: {exc}", file=sys.stderr)
            failed = True
            continue
        built += 1
        print(_summary(path))
    for s in skipped:
        print(f"skipped {s}")
    if args.task == "all" and built == 0 and not failed:
        print(f"build-task: nothing was built for --split {args.split} (every task was "
              f"skipped, see above); check --source-root", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
