"""The `harness` command: `run`, `report`, `methods`, `train`, `eval`, `diagnose`, `doctor`,
`rescore`, `export`, `export-predictions`, `export-lmms-eval`, `export-vlmevalkit`, `demo` and
`mechanism` (their own options are parsed by `harness.demo.main` /
`harness.mechanism.main`).

Owns argument parsing and `main(argv)` only; the work is in `harness.config` (tables),
`harness.plan` (cells, cost, shards), `harness.runner` (execution), `harness.store`,
`harness.publish` (reports), `harness.run_folder` (single runs) and `harness.diagnose`. Exit
codes: 0 success (a dry run that printed its plan, whatever data is missing), 1 some cells
failed, 2 bad input (nothing was run).

Options mean the same here as in `build-task` and `dedup`: `--device`, `--no-progress`, `--seed`,
`--out`, `--built`, `--overwrite`, `--version`. `--device` and `--no-progress` set the executor
options of the same name (`--executor-opt device=... / progress=false` still work; the two
agree or it is an error). Only the modules a command needs are imported, in its handler, so
`--help` answers at once (tests/test_cli_help.py).

    harness run --table 1 --dry-run
    harness run --table 3 --limit 20 --epochs 2 --runs runs-smoke --shard 0/4
    harness run --table 1 --executor oracle --built built     # no model: exercises the pipeline
    harness report --table 1
    harness train --backbone qwen3-vl-4b --task localization --method livr --out runs/loc-livr
    harness eval runs/loc-livr --split val
    harness diagnose runs/table3/qwen3-vl-4b/localization/livr
    harness rescore 1                   # re-parse table 1's saved outputs, rewrite its report
    harness export-predictions runs/table1/qwen3-vl-4b/jigsaw/zero_shot
    harness doctor --backbone qwen2.5-vl-3b --executor-opt source=/models/Qwen2.5-VL-3B-Instruct
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config import Overrides, TableConfig, load_table, table_names
from harness.errors import ConfigError
from livr_core.backbones import BACKBONES
from livr_core.configs import SEED

if TYPE_CHECKING:
    from harness.executor import CellExecutor
    from harness.options import ModelOptions
    from harness.plan import Cell

NO_DATA = "no data"  # a dry run's status of a cell whose splits are not built


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


def _command(sub: argparse._SubParsersAction, name: str, text: str) -> argparse.ArgumentParser:
    """A subcommand whose one-line summary is also its `--help` description."""
    return sub.add_parser(name, help=text, description=text)


def _training_args(p: argparse.ArgumentParser) -> None:
    """What changes a trained cell and so its hash: declared once for `run`, `report` and
    `train`."""
    p.add_argument("--epochs", type=int,
                   help="total epochs per trained method, its stage split kept in proportion "
                        "(default: each method's own; `harness methods` lists them)")
    p.add_argument("--lr", type=float,
                   help="learning rate of every trained method (default: each method's own)")
    p.add_argument("--limit", type=int, help="use the first N examples of every split")
    p.add_argument("--seed", type=int,
                   help=f"training seed of every cell (default: {SEED}, the paper's)")


def _table_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--table", required=True,
                   help=f"1-4, a table name ({', '.join(table_names())}) or a .toml path")
    p.add_argument("--backbones", nargs="+", help="restrict/replace the table's backbones")
    p.add_argument("--tasks", nargs="+", help="restrict/replace the table's tasks")
    p.add_argument("--methods", nargs="+", help="restrict/replace the table's methods")
    _training_args(p)
    p.add_argument("--runs", type=Path, default=Path("runs"), help="run store (default: runs/)")


def _built_arg(p: argparse.ArgumentParser, default: Path | None = Path("built"),
               text: str = "built splits, <built>/<task>/<split>/ (default: built/)") -> None:
    p.add_argument("--built", type=Path, default=default, help=text)


def _executor_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", default="livr",
                   help="what runs a cell: livr (the trainer), oracle, constant, or "
                        "module:factory (default: livr)")


def _model_args(p: argparse.ArgumentParser, progress: bool = False) -> None:
    """Where and how a backbone runs: `--device` (and `--no-progress` for commands that train)
    beside the executor's own `--executor-opt KEY=VALUE` options."""
    p.add_argument("--device", help="where the model runs: cpu, cuda, cuda:1, ... (default: "
                   "cuda when available, else cpu); the executor option device")
    if progress:
        p.add_argument("--no-progress", action="store_true",
                       help="hide the training progress bars (executor option progress=false)")
    p.add_argument("--executor-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="option passed to the executor's factory (repeatable); livr takes the "
                        "fields of harness.options.ModelOptions: device, source, models_dir, "
                        "batch_size, max_new_tokens, dtype, min_pixels, max_pixels, ...")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow a checkpoint livr_core has no native implementation for to run "
                        "the modeling code it ships; review that code first")


def _executor_options(args: argparse.Namespace) -> dict[str, str]:
    """`--executor-opt` with the plain flags that set the same options."""
    options = _options(args.executor_opt)
    flags = {"trust_remote_code": "true" if args.trust_remote_code else None,
             "device": None if args.device in (None, "auto") else args.device,
             "progress": "false" if getattr(args, "no_progress", False) else None}
    for key, value in flags.items():
        if value is None:
            continue
        if key in options and options[key].lower() != value.lower():
            raise ConfigError(f"--{key.replace('_', '-')} and --executor-opt {key}="
                              f"{options[key]} disagree; give one of them")
        options[key] = value
    return options


def _model_options(args: argparse.Namespace) -> ModelOptions:
    from harness.options import ModelOptions

    return ModelOptions.parse(_executor_options(args))


def _parser() -> argparse.ArgumentParser:
    from builders import package_version

    parser = argparse.ArgumentParser(
        prog="harness",
        description="Reproduce the LIVR paper's tables (zero-shot, direct SFT, LIVR and every "
                    "ablation), train, evaluate and diagnose single runs, export them.",
        epilog="First: `harness demo` (the toolkit end to end on miniature data, about a "
               "minute on a CPU), `harness mechanism` (do the latents carry the image?), `harness doctor "
               "--backbone NAME` (this machine and checkpoint). `harness COMMAND --help` for each "
               "command's options.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = _command(sub, "run", "run (or resume) the cells of a table and write its report")
    _table_args(run)
    _built_arg(run)
    run.add_argument("--dry-run", action="store_true",
                     help="print the cells with their status and cost, and the commands that "
                          "build any missing split; run nothing")
    run.add_argument("--shard", help="i/n: run shard i (from 0) of n; same partition everywhere")
    _executor_arg(run)
    _model_args(run, progress=True)
    run.add_argument("--replace", action="store_true",
                     help="move cell folders of another config aside instead of refusing")
    report = _command(sub, "report", "write a table's report from the run store")
    _table_args(report)
    report.add_argument("--force", action="store_true",
                        help="replace the table's report even with one holding fewer results")
    _command(sub, "methods", "print every method with its settings")
    _single_run_parsers(sub)
    _rescore_parser(sub)
    _export_predictions_parser(sub)
    # listed in --help; main() hands their arguments to their own modules before parsing
    _command(sub, "demo", "the whole toolkit end to end on miniature data with a tiny model "
             "(see harness demo --help)")
    _command(sub, "mechanism", "train LIVR and latents-only on a synthetic task and check that "
             "only LIVR answers through its latents (see harness mechanism --help)")
    _doctor_parser(sub)
    return parser


# --- rescore ------------------------------------------------------------------------------------


def _rescore_parser(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "rescore", "re-parse saved raw outputs with the current parser and "
                 "rewrite metrics (and a table's report); runs no model")
    p.add_argument("target", help="a run or cell folder (its eval/ results included), a run "
                   "store folder, or a table (1-4, a name or a .toml path) in --runs")
    p.add_argument("--runs", type=Path, default=Path("runs"),
                   help="run store of a table (default: runs/)")
    p.add_argument("--judge", metavar="MODULE:FUNCTION",
                   help="fallback for MCQ outputs the rules cannot read: a function (text, "
                        "letters, choices) -> letter or None; recorded in the metrics")


def _rescore(args: argparse.Namespace) -> int:
    from harness.publish import publish_table
    from harness.rescore import load_judge, rescore_tree

    judge = load_judge(args.judge) if args.judge else None
    target = Path(args.target)
    table = None if target.is_dir() else load_table(args.target)
    roots = [target] if table is None else [args.runs / table.name]
    if table is not None and not roots[0].is_dir():
        raise ConfigError(f"no results of {table.name} in {args.runs} ({roots[0]} is missing)")
    summary = rescore_tree(roots, judge, args.judge)
    if table is not None:
        publish_table(table, args.runs)
    print(summary.describe())
    return 1 if summary.skipped else 0


# --- export-predictions -------------------------------------------------------------------------


def _export_predictions_parser(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, "export-predictions", "write a run's generations as lmms-eval samples "
                 "JSONL and VLMEvalKit xlsx/TSV prediction files")
    p.add_argument("run_dir", type=Path, help="a scored run or cell folder (or its eval/<split>)")
    p.add_argument("--out", type=Path, help="the folder written (default: <run_dir>/export)")
    p.add_argument("--format", nargs="+", default=None, choices=("lmms-eval", "vlmevalkit"),
                   help="which prediction files (default: both)")
    _built_arg(p, None, "built splits for questions and prompts (default: the run's own)")


def _export_predictions(args: argparse.Namespace) -> int:
    from harness.export_predictions import FORMATS, export_predictions

    out = args.out or args.run_dir / "export"
    paths = export_predictions(args.run_dir, out, args.format or FORMATS, args.built)
    print("written: " + ", ".join(str(p) for p in paths))
    return 0


def _run_dir_parser(
    sub: argparse._SubParsersAction, name: str, text: str
) -> argparse.ArgumentParser:
    p = _command(sub, name, text)
    p.add_argument("run_dir", type=Path,
                   help="a run folder (harness train --out, or a cell folder of a table)")
    p.add_argument("--split", default="test", help="split of the run's tasks (default: test)")
    _built_arg(p, None, "built splits (default: the ones the run was trained on)")
    p.add_argument("--limit", type=int, help="first N examples per task")
    _model_args(p)
    return p


def _single_run_parsers(sub: argparse._SubParsersAction) -> None:
    train = _command(sub, "train", "train one method on one task into a run folder")
    train.add_argument("--backbone", required=True, help=f"one of {', '.join(BACKBONES)}")
    train.add_argument("--task", required=True, help="a task name or alias from tasks.toml")
    train.add_argument("--method", required=True, help="a method name (harness methods)")
    train.add_argument("--out", type=Path, required=True, help="the run folder")
    _built_arg(train)
    _training_args(train)
    train.add_argument("--checkpoint", choices=("best", "final"),
                       help="keep the best-validation or the final epoch (default: best)")
    _executor_arg(train)
    train.add_argument("--replace", action="store_true",
                       help="move a run folder of another config aside instead of refusing")
    _model_args(train, progress=True)
    _run_dir_parser(sub, "eval", "evaluate a trained run folder on a split")
    diagnose = _run_dir_parser(sub, "diagnose", "usage diagnostics of a run: latents, masks, "
                               "attention maps, t-SNE")
    diagnose.add_argument("--out", type=Path,
                          help="the folder written (default: <run_dir>/diagnostics)")
    diagnose.add_argument("--overlays", type=int, default=4,
                          help="examples drawn with latent-to-image attention (default: 4)")
    diagnose.add_argument("--tsne-examples", type=int, default=50,
                          help="examples per task in the t-SNE plot (default: 50, as the paper)")
    diagnose.add_argument("--tsne-per", choices=("task", "total"), default="task",
                          help="--tsne-examples per evaluated task (default, the paper's Fig. 4) "
                               "or in total")
    _export_parser(sub)


def _export_parser(sub: argparse._SubParsersAction) -> None:
    export = _command(sub, "export", "write a trained run as a stock Hugging Face checkpoint "
                      "(LoRA merged, latent tokens in the tokenizer, livr.json saying how to "
                      "prompt it)")
    export.add_argument("run_dir", type=Path,
                        help="a run folder (harness train --out, or a cell folder of a table)")
    export.add_argument("--out", type=Path, required=True, help="the export folder (new or empty)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace a non-empty --out")
    _model_args(export)
    packs = {
        "export-lmms-eval": ("write an lmms-eval task pack (YAML + utils.py scoring with the "
                             "toolkit's parser) over the built splits"),
        "export-vlmevalkit": ("write VLMEvalKit TSV files (original image bytes, the toolkit's "
                              "prompt verbatim) and a dataset class"),
    }
    for name, what in packs.items():
        pack = _command(sub, name, what)
        _built_arg(pack)
        pack.add_argument("--out", type=Path, required=True, help="the pack folder (new or empty)")
        pack.add_argument("--tasks", nargs="+",
                          help="tasks to include (default: every task with a built --split)")
        pack.add_argument("--split", default="test", help="split to export (default: test)")
        pack.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
        if name == "export-lmms-eval":
            pack.add_argument("--export", type=Path,
                              help="a `harness export` folder: its latent suffix goes into "
                                   "every prompt")


def _doctor_parser(sub: argparse._SubParsersAction) -> None:
    doctor = _command(sub, "doctor", "check this machine, backbone and checkpoint before a long "
                      "run: versions, device, loading, latents, template, pixel budget, exact "
                      "bottleneck, step timings, Table 1 estimate")
    doctor.add_argument("--backbone", required=True, help=f"one of {', '.join(BACKBONES)}")
    doctor.add_argument("--task", help="time and check on this task's first training example "
                        "(default: a synthetic two-image example)")
    _built_arg(doctor, None, "built splits for --task (default: built/)")
    doctor.add_argument("--steps", type=int, default=3,
                        help="timed optimizer steps per arm, after one warm-up (default: 3)")
    doctor.add_argument("--image-size", default="640x480", metavar="WxH",
                        help="images of the synthetic example (default: 640x480)")
    doctor.add_argument("--json", type=Path, help="also write the checks as JSON here")
    _model_args(doctor)


def _doctor(args: argparse.Namespace) -> int:
    from harness.doctor import main as doctor_main

    width, sep, height = args.image_size.partition("x")
    if not (sep and width.isdigit() and height.isdigit()) or args.steps < 1:
        raise ConfigError(f"--image-size takes WxH (e.g. 640x480) and --steps >= 1; got "
                          f"{args.image_size!r}, {args.steps}")
    options = _model_options(args)
    return doctor_main(args.backbone, options, args.task, args.built, args.steps,
                       (int(width), int(height)), args.json)


def _overrides(args: argparse.Namespace, **names: tuple[str, ...] | None) -> Overrides:
    return Overrides(epochs=args.epochs, lr=args.lr, limit=args.limit, seed=args.seed, **names)


def _load(args: argparse.Namespace) -> TableConfig:
    return load_table(args.table, _overrides(
        args, backbones=_names(args.backbones), tasks=_names(args.tasks),
        methods=_names(args.methods)))


def _run(args: argparse.Namespace) -> int:
    from harness.executor import executor_identity, make_executor
    from harness.plan import format_missing, format_plan, parse_shard, plan_cells, shard_cells
    from harness.publish import publish_table
    from harness.runner import check_conflicts, run_cells
    from harness.store import RunStore

    table = _load(args)
    shard = parse_shard(args.shard) if args.shard else None
    executor = make_executor(args.executor, _executor_options(args))
    cells = plan_cells(table, args.built, executor_identity(executor), missing_ok=args.dry_run)
    if shard is not None:
        cells = shard_cells(cells, *shard)
    store = RunStore(args.runs)
    where = f" (shard {args.shard})" if shard else ""
    if args.dry_run:
        statuses = {c.key: NO_DATA if c.missing else store.status_of(c.config) for c in cells}
        print(f"{table.title}{where}: {len(cells)} cells, executor {executor.name}, "
              f"store {args.runs}")
        print(format_plan(cells, statuses))
        _print_plan_warnings(executor, cells)
        missing = {split for cell in cells for split in cell.missing}
        if missing:
            print(f"\n{NO_DATA}: costed at tasks.toml's split sizes until built")
            print(format_missing(missing, args.built))
        return 0
    for moved in check_conflicts(cells, store, args.replace):
        print(f"moved aside: {moved}")
    print(f"{table.title}{where}: {len(cells)} cells, executor {executor.name}, store {args.runs}")
    summary = run_cells(cells, store, executor, args.built)
    publish_table(table, args.runs)
    print(summary.describe())
    return 1 if summary.failed or summary.damaged else 0


def _print_plan_warnings(executor: CellExecutor, cells: Sequence[Cell]) -> None:
    """The executor's warnings about planned cells (e.g. a stage trained at learning rate 0),
    each message once with the cells it concerns."""
    plan_warnings = getattr(executor, "plan_warnings", None)
    if plan_warnings is None:
        return
    by_message: dict[str, list[str]] = {}
    for cell in cells:
        for message in plan_warnings(cell):
            by_message.setdefault(message, []).append("/".join(cell.key[1:]))
    for message, keys in by_message.items():
        shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        print(f"warning: {message} ({len(keys)} cell(s): {shown})")


def _train(args: argparse.Namespace) -> int:
    from harness.executor import executor_identity, make_executor
    from harness.run_folder import FolderStore, single_cell
    from harness.runner import check_conflicts, run_cells

    executor = make_executor(args.executor, _executor_options(args))
    cell = single_cell(args.backbone, args.task, args.method, args.built,
                       executor_identity(executor), _overrides(args), args.checkpoint)
    store = FolderStore(args.out)
    for moved in check_conflicts([cell], store, args.replace):
        print(f"moved aside: {moved}")
    summary = run_cells([cell], store, executor, args.built)
    print(summary.describe())
    return 1 if summary.failed or summary.damaged else 0


def _eval(args: argparse.Namespace) -> int:
    from harness.run_folder import evaluate_run, open_run, write_evaluation

    loaded, data = open_run(args.run_dir, _model_options(args),
                            args.split, args.built, args.limit)
    predictions, metrics = evaluate_run(loaded, data)
    out = write_evaluation(args.run_dir / "eval" / args.split, predictions, metrics)
    for task, m in metrics["tasks"].items():
        print(f"{task}: accuracy {m['accuracy']:.2f}% ({m['correct']}/{m['n']}), "
              f"parse failures {m['parse_failure_rate']:.2f}%")
    if len(metrics["tasks"]) > 1:
        print(f"macro mean: {metrics['macro_mean']:.2f}%")
    print(f"written: {out}/metrics.json, predictions.jsonl")
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    from harness.diagnose import DiagnoseConfig, diagnose, format_summary
    from harness.run_folder import open_run

    loaded, data = open_run(args.run_dir, _model_options(args),
                            args.split, args.built, args.limit)
    config = DiagnoseConfig(overlays=args.overlays, tsne_examples=args.tsne_examples,
                            tsne_per=args.tsne_per)
    out = args.out or args.run_dir / "diagnostics"
    print(format_summary(diagnose(loaded, data, out, config)))
    print(f"written: {out}/diagnostics.json")
    return 0


def _export(args: argparse.Namespace) -> int:
    from harness.export_model import export_run
    from livr_core.export import read_livr_info

    try:
        out = export_run(args.run_dir, args.out, _model_options(args), args.overwrite)
    except FileExistsError as exc:
        raise ConfigError(str(exc)) from None
    info = read_livr_info(out)
    print(f"exported {args.run_dir} -> {out} ({info['architecture']}, K={info['k']})")
    if info["k"]:
        print(f"prompt: append {info['latent_sequence']!r} to the user's text, after the prompt; "
              "the latent ids are suppressed in generation_config.json")
    return 0


def _built_tasks(built: Path, split: str) -> list[str]:
    from builders.io import MANIFEST, split_dir
    from builders.registry import load_registry

    return [spec.name for spec in load_registry().tasks.values()
            if (split_dir(built, spec.name, split) / MANIFEST).is_file()]


def _export_pack(args: argparse.Namespace) -> int:
    tasks = list(_names(args.tasks) or _built_tasks(args.built, args.split))
    if not tasks:
        raise ConfigError(f"no built {args.split!r} split under {args.built} (build one with "
                          "build-task, or pass --built)")
    try:
        if args.command == "export-lmms-eval":
            from harness.export_lmms_eval import write_lmms_eval_pack

            out = write_lmms_eval_pack(args.built, args.out, tasks, args.split, args.export,
                                       args.overwrite)
        else:
            from harness.export_vlmevalkit import write_vlmevalkit_pack

            out = write_vlmevalkit_pack(args.built, args.out, tasks, args.split, args.overwrite)
    except FileExistsError as exc:
        raise ConfigError(str(exc)) from None
    print(f"wrote {out}: {len(tasks)} task(s), split {args.split} ({', '.join(tasks)}); "
          f"see {out}/README.md")
    return 0


def _methods() -> int:
    from harness.methods import METHODS

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
    if argv and argv[0] == "demo":
        from harness.demo import main as demo_main  # heavy imports only when asked for

        return demo_main(argv[1:])
    if argv and argv[0] == "mechanism":
        from harness.mechanism import main as mechanism_main

        return mechanism_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "methods":
            return _methods()
        if args.command == "report":
            from harness.publish import publish_table

            return publish_table(_load(args), args.runs, args.force)
        commands = {"train": _train, "eval": _eval, "diagnose": _diagnose, "run": _run,
                    "export": _export, "export-lmms-eval": _export_pack,
                    "export-vlmevalkit": _export_pack, "rescore": _rescore,
                    "export-predictions": _export_predictions,
                    "doctor": _doctor}
        return commands[args.command](args)
    except ConfigError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
