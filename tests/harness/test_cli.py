"""The `harness` command end to end with the model-free executors: dry-run plan and totals,
run + report, shards sharing one store, errors before anything runs, part-2 commands (train, eval
and diagnose with the real executor: test_train_executor.py, test_diagnose.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.methods import METHODS


def _args(built: Path, runs: Path, *extra: str) -> list[str]:
    return ["run", "--table", "3", "--built", str(built), "--runs", str(runs), *extra]


def test_dry_run_prints_plan_and_totals(built: Path, tmp_path: Path, capsys):
    runs = tmp_path / "runs"
    assert main(_args(built, runs, "--executor", "oracle", "--dry-run", "--epochs", "5")) == 0
    out = capsys.readouterr().out
    assert "21 cells, executor oracle" in out
    lines = out.splitlines()
    livr = next(x for x in lines if "localization" in x and " livr " in x).split()
    assert livr[-5:] == ["new", "5", "6", "30", "25"]  # epochs, train ex, passes, eval (5x4+5)
    total = next(x for x in lines if x.startswith("total (21 cells)")).split()
    # 18 trained cells x 5 epochs; 18 x 6 train examples; x5 passes; 3 x 5 + 18 x 25 eval.
    assert total[-4:] == ["90", "108", "540", "465"]
    assert next(x for x in lines if x.startswith("to run")).split()[-4:] == total[-4:]
    assert not runs.exists()  # a dry run writes nothing


def test_run_then_rerun_skips_and_writes_reports(built: Path, tmp_path: Path, capsys):
    runs = tmp_path / "runs"
    args = _args(built, runs, "--executor", "oracle", "--tasks", "localization", "counting",
                 "--methods", "zero_shot", "livr")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4 ran, 0 already done" in out and "Delta" not in out
    assert "100.00* (83.61)" in out  # ours beside the paper's, best marked
    report = runs / "table3" / "report"
    assert {p.name for p in report.iterdir()} == {
        "report.txt", "report.md", "report.csv", "report.tex", "report.json", "chart.png"}
    assert main(args) == 0
    assert "0 ran, 4 already done" in capsys.readouterr().out
    dry = main([*args, "--dry-run"])
    assert dry == 0 and "to run (0 cells)" in capsys.readouterr().out


def test_shards_share_one_store(built: Path, tmp_path: Path, capsys):
    runs = tmp_path / "runs"
    for i in range(3):
        assert main(_args(built, runs, "--executor", "oracle", "--shard", f"{i}/3")) == 0
    capsys.readouterr()
    statuses = [json.loads(p.read_text()) for p in runs.glob("table3/*/*/*/status.json")]
    assert len(statuses) == 21
    assert {(s["status"], s["attempts"]) for s in statuses} == {("done", 1)}  # each ran once


def test_failed_cell_gives_exit_code_1_and_a_report(built: Path, tmp_path: Path, capsys):
    runs = tmp_path / "runs"
    args = _args(built, runs, "--tasks", "localization", "--methods", "direct_sft", "livr",
                 "--executor", "tests.harness.fakes:crash_in_livr_localization")
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "1 ran, 0 already done, 0 running elsewhere, 1 failed" in out
    assert "FAILED table3/qwen3-vl-4b/localization/livr: RuntimeError: boom" in out
    assert "failed (83.61)" in out  # the report shows the failed cell as such
    assert (runs / "table3" / "qwen3-vl-4b" / "localization" / "livr" / "error.txt").exists()


def test_executor_plugins(built: Path, tmp_path: Path, capsys):
    args = _args(built, tmp_path / "runs", "--tasks", "localization", "--methods", "livr",
                 "--executor", "constant", "--executor-opt", "letter=B")
    assert main(args) == 0
    assert " 60.00 (83.61)" in capsys.readouterr().out  # gold B, A, B, A, B; one row: no style
    missing = _args(built, tmp_path / "runs2", "--executor", "tests.no_such_module:factory")
    assert main(missing) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "message"), [
    (["--executor", "livr", "--executor-opt", "colour=red"], "unknown executor option(s) colour"),
    (["--executor", "magic"], "unknown executor 'magic'; valid: livr, oracle, constant"),
    (["--executor", "constant", "--executor-opt", "colour=red"], "rejected its options"),
    (["--executor", "oracle", "--backbones", "qwen9"], "unknown backbone 'qwen9'; valid:"),
    (["--executor", "oracle", "--methods", "livr,zs"], "unknown method 'zs'; valid methods:"),
    (["--executor", "oracle", "--shard", "2/2"], "need 0 <= i < n"),
])
def test_errors_before_anything_runs(built: Path, tmp_path: Path, capsys, extra, message):
    runs = tmp_path / "runs"
    assert main(_args(built, runs, *extra)) == 2
    assert message in capsys.readouterr().err
    assert not runs.exists()


def test_missing_built_splits(tmp_path: Path, capsys):
    runs = tmp_path / "runs"
    assert main(_args(tmp_path / "nothing", runs, "--executor", "oracle")) == 2
    err = capsys.readouterr().err
    assert "localization/test/.livr/manifest.json" in err and "build-task" in err
    assert not runs.exists()


def _commands(out: str, tool: str) -> list[list[str]]:
    return [line.split()[1:] for line in out.splitlines() if line.startswith(f"  {tool} ")]


def test_dry_run_before_any_data_prints_the_plan_and_the_commands(tmp_path: Path, capsys):
    """Nothing built: every cell is planned at tasks.toml's sizes, each split the table needs
    is listed with the build-task command that makes it (raw data at /data/<source>), then the
    dedup runs; every printed command parses with its tool's own parser; exit 0."""
    from builders.cli import build_parser
    from builders.registry import load_registry
    from dedup.cli import build_parser as dedup_parser

    built, runs = tmp_path / "built", tmp_path / "runs"
    assert main(_args(built, runs, "--tasks", "localization", "counting", "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "14 cells, executor livr" in out
    cells = [x for x in out.splitlines() if x.startswith("qwen3-vl-4b ")]
    assert len(cells) == 14 and all(" no data " in x for x in cells)
    livr = next(x for x in cells if "localization" in x and " livr " in x).split()
    registry = load_registry()
    train = registry.resolve("localization").size("train")
    assert livr[-4:-2] == ["10", str(train)]  # 4 + 6 epochs over the paper's 1,000
    builds = _commands(out, "build-task")
    assert sorted((c[0], c[2]) for c in builds) == sorted(
        (t, s) for t in ("localization", "counting") for s in ("train", "val", "test"))
    assert ["localization", "--split", "train", "--source-root", "/data/coco", "--out",
            str(built)] in builds
    assert ["localization", "--split", "test", "--source-root", "/data/blink", "--out",
            str(built)] in builds  # BLINK-sourced test split
    assert ["counting", "--split", "test", "--source-root", "/data/pixmo", "--out",
            str(built)] in builds
    for command in builds:
        args = build_parser().parse_args(command)
        assert registry.resolve(args.task).source_for(args.split) == args.source_root.name
    dedups = _commands(out, "dedup")
    assert dedups == [
        ["--against", "blink", "--built", str(built), "--tasks", "localization",
         "--source-root", "/data"],  # Localization draws boxes: its raw images compared too
        ["--against", "pixmo", "--built", str(built), "--tasks", "counting"]]
    for command in dedups:
        dedup_parser().parse_args(command)
    assert not runs.exists() and not built.exists()  # a dry run writes nothing


def test_dry_run_lists_only_what_is_missing(built: Path, tmp_path: Path, capsys):
    import shutil

    shutil.rmtree(built / "localization" / "val")
    runs = tmp_path / "runs"
    assert main(_args(built, runs, "--tasks", "localization", "counting", "--executor", "oracle",
                      "--dry-run")) == 0
    out = capsys.readouterr().out
    status = {tuple(x.split()[1:3]): x.split()[3] for x in out.splitlines()
              if x.startswith("qwen3-vl-4b ")}
    assert status[("localization", "zero_shot")] == "new"  # needs the test split only
    assert status[("localization", "livr")] == "no"  # "no data": best checkpoint needs val
    assert status[("counting", "livr")] == "new"
    assert _commands(out, "build-task") == [
        ["localization", "--split", "val", "--source-root", "/data/coco", "--out", str(built)]]
    assert [c[:2] for c in _commands(out, "dedup")] == [["--against", "blink"]]
    shard = next((built / "counting" / "train").glob("data-*.parquet"))
    shard.write_bytes(shard.read_bytes() + b"x")  # no longer the shard its manifest records
    assert main(_args(built, runs, "--tasks", "counting", "--executor", "oracle",
                      "--dry-run")) == 0
    assert _commands(capsys.readouterr().out, "build-task") == [
        ["counting", "--split", "train", "--source-root", "/data/pixmo", "--out", str(built),
         "--overwrite"]]  # the damaged split is there: it is rebuilt in place
    assert main(_args(built, runs, "--tasks", "localization", "--executor", "oracle")) == 2
    err = capsys.readouterr().err  # without --dry-run: refused, with the same command
    assert "build-task localization --split val --source-root /data/coco" in err


def test_plain_flags_set_the_executor_options(built: Path, tmp_path: Path, capsys):
    from harness.cli import _executor_options, _parser

    args = _parser().parse_args(_args(built, tmp_path, "--device", "cpu", "--no-progress"))
    assert _executor_options(args) == {"device": "cpu", "progress": "false"}
    same = _parser().parse_args(_args(built, tmp_path, "--device", "cpu",
                                      "--executor-opt", "device=cpu"))
    assert _executor_options(same) == {"device": "cpu"}
    auto = _parser().parse_args(_args(built, tmp_path, "--device", "auto"))
    assert _executor_options(auto) == {}  # auto: the executor's own default
    assert main(_args(built, tmp_path / "runs", "--device", "cuda", "--executor-opt",
                      "device=cpu", "--dry-run")) == 2
    assert "--device and --executor-opt device=cpu disagree" in capsys.readouterr().err


def test_seed_changes_every_cell_hash_and_only_when_given(built: Path):
    from harness.config import load_table
    from harness.plan import plan_cells

    base = {c.key: c.hash for c in plan_cells(load_table("3"), built, {"name": "oracle"})}
    same = plan_cells(load_table("3", {"seed": 42}), built, {"name": "oracle"})
    other = plan_cells(load_table("3", {"seed": 7}), built, {"name": "oracle"})
    assert {c.key: c.hash for c in same} == base
    assert all(c.hash != base[c.key] and c.config.seed == 7 for c in other)


def test_config_change_refused_before_running(built: Path, tmp_path: Path, capsys):
    runs = tmp_path / "runs"
    base = _args(built, runs, "--executor", "oracle", "--tasks", "localization")
    assert main(base) == 0
    assert main([*base, "--limit", "2"]) == 2
    assert "different config" in capsys.readouterr().err
    assert main([*base, "--limit", "2", "--replace"]) == 0
    assert len(list(runs.glob("table3/qwen3-vl-4b/localization/*.replaced-*"))) == 7


def test_demo_is_handed_its_own_arguments(monkeypatch):
    import harness.demo

    seen = []
    monkeypatch.setattr(harness.demo, "main", lambda argv: seen.append(list(argv)) or 0)
    assert main(["demo", "--quick", "--out", "x"]) == 0
    assert seen == [["--quick", "--out", "x"]]


def test_methods_lists_every_method(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "livr_mirage" in out and "BOTTLENECK_LATENTS_NO_PROMPT" in out
    assert len(out.splitlines()) == 1 + len(METHODS) and "mirage" in out  # header + one each


def test_report_command(built: Path, tmp_path: Path, capsys):
    runs = tmp_path / "runs"
    report = ["report", "--table", "3", "--runs", str(runs)]
    assert main(report) == 1  # an empty store: nothing to report, nothing written
    assert "nothing to report" in capsys.readouterr().err
    assert not (runs / "table3" / "report").exists()
    tasks = ["--tasks", "localization", "counting"]
    assert main(_args(built, runs, "--executor", "oracle", *tasks,
                      "--methods", "zero_shot", "livr")) == 0
    assert "Count" in (runs / "table3" / "report" / "report.md").read_text()
    capsys.readouterr()
    assert main([*report, *tasks]) == 0  # the same 4 results again
    assert "Random choice" in capsys.readouterr().out
    # Table 3's own tasks hold only the 2 Loc results: refused unless forced; the fuller stays.
    assert main(report) == 1
    assert "holds 4 results, this report 2 (--force replaces it)" in capsys.readouterr().err
    assert "Count" in (runs / "table3" / "report" / "report.md").read_text()
    assert main([*report, "--force"]) == 0
    assert "Count" not in (runs / "table3" / "report" / "report.md").read_text()


def test_dry_run_warns_about_stages_trained_at_learning_rate_zero(built: Path, tmp_path: Path,
                                                                   capsys):
    """`--epochs 2 --limit 4`: LIVR's stages get one epoch of 4 examples each, i.e. one update
    (batch 1 x accumulation 8) at the first warm-up step's learning rate 0; direct SFT's two
    epochs make two updates, the first at lr 0."""
    runs = tmp_path / "runs"
    args = _args(built, runs, "--tasks", "localization", "--methods", "zero_shot", "livr",
                 "direct_sft", "--dry-run")
    assert main([*args, "--epochs", "2", "--limit", "4"]) == 0
    warnings = [x for x in capsys.readouterr().out.splitlines() if x.startswith("warning: ")]
    assert len(warnings) == 3  # zero-shot trains nothing
    sft = "warning: stage 2: 2 updates, fewer than the 20 a 5% warm-up needs: 1 of them (50%)"
    assert warnings[0].startswith(sft)  # the table's method order: direct SFT before LIVR
    assert warnings[0].endswith("(1 cell(s): qwen3-vl-4b/localization/direct_sft)")
    for stage, line in zip((1, 2), warnings[1:]):
        assert line.startswith(f"warning: stage {stage}: all 1 update(s) happen at learning "
                               "rate 0")
        assert line.endswith("(1 cell(s): qwen3-vl-4b/localization/livr)")
    assert main([*args, "--executor", "oracle", "--epochs", "2", "--limit", "4"]) == 0
    assert "warning:" not in capsys.readouterr().out  # a model-free executor trains nothing
