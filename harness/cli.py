"""The `harness` command: `run`, `report`, `methods`; `train`, `eval`, `diagnose`, `demo` land in
part 2 (they need the trained-model side).

Owns argument parsing and `main(argv)` only; the work is in `harness.config` (tables),
`harness.plan` (cells, cost, shards), `harness.runner` (execution), `harness.store` and
`harness.report`. Exit codes: 0 success, 1 some cells failed, 2 bad input (nothing was run).

    harness run --table 1 --dry-run
    harness run --table 3 --limit 20 --epochs 2 --runs runs-smoke --shard 0/4
    harness run --table 1 --executor oracle --built built     # no model: exercises the pipeline
    harness report --table 1
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.config import ConfigError, Overrides, TableConfig, load_table, table_names
from harness.methods import METHODS

PART2 = ("train", "eval", "diagnose", "demo")


def _names(values: Sequence[str] | None) -> tuple[str, ...] | None:
    """`--tasks a b`, `--tasks a,b` and mixtures of both."""
    if values is None:
        return None
    return tuple(v for value in values for v in value.split(",") if v)


def _options(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--executor-opt takes KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def _table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--table", required=True,
                   help=f"1-4, a table name ({', '.join(table_names())}) or a .toml path")
    p.add_argument("--backbones", nargs="+", help="restrict/replace the table's backbones")
    p.add_argument("--tasks", nargs="+", help="restrict/replace the table's tasks")
    p.add_argument("--methods", nargs="+", help="restrict/replace the table's methods")
    p.add_argument("--epochs", type=int,
                   help="total epochs per trained method, stage split kept in proportion")
    p.add_argument("--limit", type=int, help="use the first N examples of every split")
    p.add_argument("--runs", type=Path, default=Path("runs"), help="run store (default: runs/)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or resume) the cells of a table and write its report")
    _table_args(run)
    run.add_argument("--built", type=Path, default=Path("built"),
                     help="built splits, <built>/<task>/<split>/ (default: built/)")
    run.add_argument("--dry-run", action="store_true",
                     help="print the cells with their status and cost, run nothing")
    run.add_argument("--shard", help="i/n: run shard i (from 0) of n; same partition everywhere")
    run.add_argument("--executor", default="livr",
                     help="what runs a cell: livr (training, part 2), oracle, constant, or "
                          "module:factory (default: livr)")
    run.add_argument("--executor-opt", action="append", default=[], metavar="KEY=VALUE",
                     help="option passed to the executor's factory (repeatable)")
    run.add_argument("--replace", action="store_true",
                     help="move cell folders of another config aside instead of refusing")
    report = sub.add_parser("report", help="write a table's report from the run store")
    _table_args(report)
    sub.add_parser("methods", help="print every method with its settings")
    for name in PART2:  # listed in --help; main() answers them before parsing their options
        sub.add_parser(name, help="lands in part 2 (needs the trained-model side)")
    return parser


def _load(args: argparse.Namespace) -> TableConfig:
    overrides = Overrides(
        backbones=_names(args.backbones), tasks=_names(args.tasks), methods=_names(args.methods),
        epochs=args.epochs, limit=args.limit,
    )
    return load_table(args.table, overrides)


def _write_report(table: TableConfig, runs: Path) -> None:
    from harness.report import build_report, render_text, write_reports
    from harness.store import RunStore

    store = RunStore(runs)
    report = build_report(table, store)
    failures = build_report(table, store, metric="parse_failure_rate")
    paths = write_reports(report, runs / table.name / "report", extra=[failures])
    print(render_text(report, color=sys.stdout.isatty()))
    print(f"report: {', '.join(str(p) for p in paths)}")


def _run(args: argparse.Namespace) -> int:
    from harness.executor import executor_identity, make_executor
    from harness.plan import format_plan, parse_shard, plan_cells, shard_cells
    from harness.runner import check_conflicts, run_cells
    from harness.store import RunStore

    table = _load(args)
    shard = parse_shard(args.shard) if args.shard else None
    executor = make_executor(args.executor, _options(args.executor_opt))
    cells = plan_cells(table, args.built, executor_identity(executor))
    if shard is not None:
        cells = shard_cells(cells, *shard)
    store = RunStore(args.runs)
    where = f" (shard {args.shard})" if shard else ""
    if args.dry_run:
        statuses = {c.key: store.status_of(c.config) for c in cells}
        print(f"{table.title}{where}: {len(cells)} cells, executor {executor.name}, "
              f"store {args.runs}")
        print(format_plan(cells, statuses))
        return 0
    for moved in check_conflicts(cells, store, args.replace):
        print(f"moved aside: {moved}")
    print(f"{table.title}{where}: {len(cells)} cells, executor {executor.name}, store {args.runs}")
    summary = run_cells(cells, store, executor, args.built)
    _write_report(table, args.runs)
    print(summary.describe())
    return 1 if summary.failed else 0


def _methods() -> int:
    head = ("method", "finetune", "K", "position", "shared", "stage-1 mask", "epochs", "lr",
            "image x2", "ckpt")
    rows = [head] + [
        (m.name, m.finetune, str(m.latents or "-"), m.latent_position if m.latents else "-",
         "yes" if m.shared_latents else "-", m.stage1_mask or "-",
         f"{m.epochs[0]}+{m.epochs[1]}", f"{m.lr:g}", "yes" if m.image_twice else "-",
         m.checkpoint if m.trained else "-")
        for m in METHODS.values()
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PART2:
        print(f"harness {argv[0]}: lands in part 2 of the harness (it needs the trained-model "
              "side: livr_core's trainer and inference); nothing was run.", file=sys.stderr)
        return 2
    args = _parser().parse_args(argv)
    try:
        if args.command == "methods":
            return _methods()
        if args.command == "report":
            _write_report(_load(args), args.runs)
            return 0
        return _run(args)
    except ConfigError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
