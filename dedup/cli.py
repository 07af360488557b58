"""The `dedup` command: remove train/val examples that near-duplicate a test image.

    dedup --against {blink,pixmo} [--built built] [--source-root DIR] [--tasks T ...]
          [--model M] [--pretrained TAG|none] [--device auto|cpu|cuda] [--out DIR]
          [--cache DIR] [--no-progress]
    dedup calibrate --against {blink,pixmo} [same data/model options] [--per-image N] [--json FILE]

Every split is checked whole against its manifest before anything is compared, and each task's
splits are locked (`builders.io.split_lock`) from reading to rewriting, so a build cannot replace
them underneath and a second dedup is refused. After the splits are rewritten the dataset cards
are regenerated (`builders.card`) and the reports written, each file atomically.

Exit status: 0 done; 1 done, but something needs a person (an unreadable test image, an
unverifiable training example kept, an image shared by train and val: see the summary);
2 bad input (missing or damaged splits, a split being written, unknown task, bad registry).

The arguments are parsed before the pipeline (torch, open_clip, scikit-image) is imported, so
`--help` and `--version` answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from pathlib import Path

from builders import package_version
from builders.registry import RegistryError, load_registry
from dedup.config import DedupConfig, load_config, parse_pretrained

AGAINST = ("blink", "pixmo")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--against", required=True, choices=AGAINST,
                   help="the test set: tasks whose tasks.toml dedup_against names it are checked")
    p.add_argument("--built", type=Path, default=Path("built"),
                   help="root of the built splits, <built>/<task>/<split>/ (default: built/)")
    p.add_argument("--tasks", nargs="+", default=None,
                   help="only these tasks (default: every task of --against with a built folder)")
    p.add_argument("--source-root", type=Path, default=None,
                   help="raw datasets (one folder per dataset, or the dataset folder): also compare "
                        "the raw source images of tasks whose builder draws markers")
    p.add_argument("--model", default=None, help="open_clip model name, or 'tiny' (tasks.toml)")
    p.add_argument("--pretrained", default=None,
                   help="open_clip pretrained tag; 'none' = random weights, never downloads")
    p.add_argument("--device", default=None,
                   help="auto, cpu, cuda or cuda:N for the CLIP embeddings (default: tasks.toml "
                        "[dedup] device)")
    p.add_argument("--cache", type=Path, default=None,
                   help="embedding cache folder (default: <built>/.dedup-cache)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dedup",
        description="Find train/val examples that contain a near-duplicate of a test image "
                    "(CLIP retrieval, confirmed by pHash and SSIM), move them to removed-*.parquet "
                    "and write a report. Test splits are never modified.",
        epilog="Thresholds and options: [dedup] in tasks.toml. "
               "`dedup calibrate --help` for the threshold calibration.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    _common(p)
    p.add_argument("--out", "--report", dest="report", type=Path, default=None,
                   help="the report folder written (default: <built>/dedup-<against>/)")
    return p


def calibrate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dedup calibrate",
        description="Score synthetic near-duplicates of the test images (resize, JPEG, crop, "
                    "drawn overlays, colour jitter) against hard negatives (nearest other test "
                    "images) and print the thresholds that separate them.",
    )
    _common(p)
    p.add_argument("--per-image", type=int, default=None,
                   help="positives per reference image (default: one per transform)")
    p.add_argument("--limit", type=int, default=None, help="use at most this many reference images")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    return p


def _config(args: argparse.Namespace) -> DedupConfig:
    cfg = load_config()
    over = {}
    if args.model:
        over["model"] = args.model
    if args.pretrained is not None:
        over["pretrained"] = parse_pretrained(args.pretrained)
    if args.device:
        over["device"] = args.device
    return dataclasses.replace(cfg, **over)


def cache_dir(args: argparse.Namespace, cfg: DedupConfig) -> Path:
    return args.cache or (Path(cfg.cache_dir) if cfg.cache_dir else args.built / ".dedup-cache")


def run(args: argparse.Namespace) -> int:
    from builders.card import write_cards
    from builders.io import split_dir, split_lock
    from dedup.apply import apply_task
    from dedup.catalog import check_task, load_task, select_tasks, train_splits
    from dedup.confirm import Confirmer
    from dedup.embed import make_embedder
    from dedup.report import table, thumbnails, write_reports
    from dedup.run import dedup_task

    reg = load_registry()
    cfg = _config(args)
    specs = select_tasks(reg, args.against, args.built, args.tasks)
    for spec in specs:  # every task's splits exist before any work starts
        check_task(args.built, spec, args.against)
    embedder, cache = make_embedder(cfg.model, cfg.pretrained, cfg.device, cfg.seed,
                                    cache_dir(args, cfg))
    run_info = {**cfg.decision_params(), "raw_images": args.source_root is not None}
    results, outcomes = [], {}
    with ThreadPoolExecutor(max_workers=cfg.workers) as pool, closing(Confirmer(cfg)) as confirmer:
        for spec in specs:  # one task's records in memory at a time
            with ExitStack() as locks:  # the splits this task rewrites, from read to write
                for split in train_splits(spec):
                    locks.enter_context(split_lock(
                        split_dir(args.built, spec.name, split), f"dedup --against "
                        f"{args.against} of {spec.name}/{split}"))
                task = load_task(args.built, spec, args.against)
                res = dedup_task(task, cfg, args.source_root, embedder, cache, pool, confirmer,
                                 progress=not args.no_progress)
                cache.flush()
                outcomes[res.task] = apply_task(task, res.removals, args.against, run_info,
                                                reg.defaults.shard_rows)
            res.thumbs = thumbnails(res, cfg.html_max_pairs, cfg.thumb_px)
            res.loaders.clear()  # lets this task's image bytes go before the next task loads
            results.append(res)
    write_cards(args.built)
    report_dir = args.report or args.built / f"dedup-{args.against}"
    header = {"against": args.against, "built": str(args.built), "package_version": package_version(),
              "tasks_toml_sha256": reg.sha256, "config": cfg.public(),
              "source_root": str(args.source_root) if args.source_root else None}
    summary = write_reports(report_dir, args.against, results, outcomes, header,
                            cfg.html_max_pairs)
    print(table(args.against, results, outcomes))
    print(f"reports: {report_dir}/ (summary.json, pairs.jsonl, index.html, flagged_sources.json, "
          f"removed_ids.txt)")
    for problem in summary["problems"]:
        print(f"WARNING {problem}", file=sys.stderr)
    return 1 if summary["problems"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    calibrating = bool(argv) and argv[0] == "calibrate"
    args = (calibrate_parser() if calibrating else build_parser()).parse_args(argv[calibrating:])
    from builders.io import OutputError, SplitBusyError
    from dedup.catalog import DedupInputError
    from dedup.embed import ModelLoadError

    try:
        if calibrating:
            from dedup.calibrate import run_calibration

            cfg = _config(args)
            return run_calibration(args, cfg, cache_dir(args, cfg))
        return run(args)
    except (DedupInputError, RegistryError, ModelLoadError, SplitBusyError, OutputError) as exc:
        print(f"dedup: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
