"""The real executor on a tiny backbone: Table 1 end to end through `harness run`, a killed cell
resuming from its checkpoint to the same weights, `harness train` / `harness eval` round trips,
how each method maps onto livr_core, options and fingerprint."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tiny backbones are built in code; never download

import contextlib
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from threadpoolctl import threadpool_limits

from harness.cli import main
from harness.config import load_table
from harness.errors import ConfigError
from harness.executor import executor_identity, make_executor
from harness.methods import get_method
from harness.modeling import prepare
from harness.options import ModelOptions
from harness.plan import Cell, plan_cells
from harness.run_folder import FolderStore, single_cell
from harness.runner import run_cells
from harness.samples import to_samples
from harness.store import INTERRUPTED, RunStore
from harness.train_executor import LivrExecutor
from livr_core.token_types import TokenType
from tests.harness.fakes import Killed
from tests.harness.image_splits import records, write_image_splits

BACKBONE = "tiny-qwen2.5-vl"
SIZES = {"train": 10, "val": 4, "test": 6}
LIMIT = "8"  # the table runs use 8 train examples: one update of 8 per epoch
OPTS = ["--executor-opt", "device=cpu", "--executor-opt", "progress=0"]
CELL = ("table1", BACKBONE, "jigsaw")


pytestmark = pytest.mark.usefixtures("single_thread")  # conftest.py


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_splits(tmp_path_factory.mktemp("img") / "built", ["jigsaw"], SIZES)


def _table_args(built: Path, runs: Path) -> list[str]:
    return ["run", "--table", "1", "--backbones", BACKBONE, "--tasks", "jigsaw", "--methods",
            "zero_shot", "direct_sft", "livr", "--epochs", "2", "--limit", LIMIT,
            "--built", str(built), "--runs", str(runs), *OPTS]


@pytest.fixture(scope="module")
def table_run(built: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, int]:
    """Table 1 restricted to the tiny backbone, jigsaw and three methods, with the real executor."""
    torch.set_num_threads(1)
    runs = tmp_path_factory.mktemp("table") / "runs"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), threadpool_limits(1):
        code = main(_table_args(built, runs))
    return runs, out.getvalue(), code


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def _predictions(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "predictions.jsonl").read_text().splitlines()]


def test_table1_end_to_end_with_the_real_executor(table_run, built: Path, capsys):
    runs, out, code = table_run
    assert code == 0 and "3 ran, 0 already done, 0 running elsewhere, 0 failed" in out
    assert "tiny-Qwen2.5-VL" in out and "Delta vs SFT" in out
    assert {p.name for p in (runs / "table1" / "report").iterdir()} == {
        "report.txt", "report.md", "report.csv", "report.tex", "report.json", "chart.png"}
    cells = runs.joinpath(*CELL)
    for method in ("zero_shot", "direct_sft", "livr"):
        preds = _predictions(cells / method)
        assert [p["idx"] for p in preds] == [f"livr_test_Jigsaw_{i}" for i in range(1, 7)]
        assert all(isinstance(p["raw"], str) for p in preds)
        assert _metrics(cells / method)["tasks"]["jigsaw"]["n"] == 6
    assert "history" not in _metrics(cells / "zero_shot")["executor_info"]
    assert not any((cells / "zero_shot" / "checkpoints").iterdir())  # nothing trained
    livr = _metrics(cells / "livr")["executor_info"]
    # --epochs 2: LIVR (4,6) -> (1,1), direct SFT (0,10) -> (0,2); one update of 8 per epoch.
    assert [(h["stage"], h["epoch"]) for h in livr["history"]] == [(1, 1), (2, 1)]
    sft = _metrics(cells / "direct_sft")["executor_info"]
    assert [(h["stage"], h["epoch"]) for h in sft["history"]] == [(2, 1), (2, 2)]
    assert livr["global_step"] == 2 and livr["train_examples"] == 8  # --limit 8 of 10
    assert livr["selected"] == "best"
    assert livr["val_accuracy"] == max(h["val_metric"] for h in livr["history"])
    assert {p.name for p in (cells / "livr" / "checkpoints").iterdir()} >= {"best", "final"}
    config = json.loads((cells / "livr" / "config.json").read_text())
    assert config["executor"]["name"] == "livr" and config["executor"]["lora"]["r"] == 16
    assert config["executor"]["train"]["grad_accumulation"] == 8
    # a second run finds every cell done
    assert main(_table_args(built, runs)) == 0
    assert "0 ran, 3 already done" in capsys.readouterr().out


class KillAfter:
    """An on_micro_step hook: counts micro-batches and raises Killed at the `at`-th one."""

    def __init__(self, at: int | None = None) -> None:
        self.at, self.seen = at, 0

    def __call__(self, info) -> None:
        self.seen += 1
        if self.seen == self.at:
            raise Killed()


def test_killed_cell_resumes_from_its_checkpoint(table_run, built: Path, tmp_path: Path):
    executor = LivrExecutor(device="cpu", progress="0")
    table = load_table("1", {"backbones": [BACKBONE], "tasks": ["jigsaw"], "methods": ["livr"],
                             "epochs": 2, "limit": int(LIMIT)})
    cells = plan_cells(table, built, executor_identity(executor))
    store = RunStore(tmp_path / "runs")
    executor.on_micro_step = KillAfter(at=12)  # stage 2 (causal), 4 micro-batches in
    with pytest.raises(Killed):
        run_cells(cells, store, executor, built, lambda _: None)
    folder = store.cell_dir(cells[0].key)
    assert store.status_of(cells[0].config) == INTERRUPTED
    assert sorted(p.name for p in (folder / "checkpoints").glob("checkpoint-*")) == [
        "checkpoint-00000001"]  # the end of stage 1

    counter = KillAfter()
    executor.on_micro_step = counter
    summary = run_cells(cells, store, executor, built, lambda _: None)
    assert len(summary.ran) == 1 and counter.seen == 8  # only stage 2 was trained again
    info = _metrics(folder)["executor_info"]
    assert info["resumed_from"] == "checkpoint-00000001"
    assert json.loads((folder / "status.json").read_text())["attempts"] == 2
    # same weights and answers as the uninterrupted cell of the table run (same config hash)
    straight = table_run[0].joinpath(*CELL, "livr")
    assert json.loads((straight / "config.json").read_text())["hash"] == cells[0].hash
    for export in ("best", "final"):
        a = load_file(str(folder / "checkpoints" / export / "trainable.safetensors"))
        b = load_file(str(straight / "checkpoints" / export / "trainable.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _predictions(folder) == _predictions(straight)


def test_train_then_eval_round_trip(built: Path, tmp_path: Path, capsys):
    run = tmp_path / "pt"
    train = ["train", "--backbone", BACKBONE, "--task", "jigsaw", "--method", "prompt_tuning",
             "--epochs", "2", "--built", str(built), "--out", str(run), *OPTS]
    assert main(train) == 0
    assert "1 ran" in capsys.readouterr().out
    assert {"config.json", "metrics.json", "predictions.jsonl"} <= {p.name for p in run.iterdir()}
    stored = _metrics(run)
    # eval on test reproduces the run's own answers and metrics exactly
    assert main(["eval", str(run), *OPTS]) == 0
    out = capsys.readouterr().out
    assert f"jigsaw: accuracy {stored['tasks']['jigsaw']['accuracy']:.2f}% (" in out
    evaluated = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert evaluated["tasks"] == stored["tasks"]
    assert _predictions(run / "eval" / "test") == _predictions(run)
    # eval on val with the selected (best) weights gives the validation accuracy training saw
    assert main(["eval", str(run), "--split", "val", *OPTS]) == 0
    val = json.loads((run / "eval" / "val" / "metrics.json").read_text())
    assert val["tasks"]["jigsaw"]["accuracy"] == stored["executor_info"]["val_accuracy"]
    assert val["tasks"]["jigsaw"]["n"] == 4
    # training again finds the run done; a missing split is an error naming it
    assert main(train) == 0 and "0 ran, 1 already done" in capsys.readouterr().out
    assert main(["eval", str(run), "--split", "dev", *OPTS]) == 2
    assert "no built 'dev' split" in capsys.readouterr().err


def test_validation_is_scored_like_the_test(built: Path, tmp_path: Path, capsys):
    """A model that answers parseably: full fine-tuning at a high lr, 4 + 4 epochs, collapses to
    "(A)" by epoch 3 (measured: val accuracy 0, 0, 50, 50, ... on the balanced val split)."""
    executor = LivrExecutor(device="cpu", progress="0")
    cell = single_cell(BACKBONE, "jigsaw", "livr_mirage", built, executor_identity(executor))
    fast = cell.config.method.with_changes(lr=3e-3, epochs=(4, 4))
    cell = Cell(replace(cell.config, method=fast), cell.cost)
    run = tmp_path / "run"
    assert len(run_cells([cell], FolderStore(run), executor, built, lambda _: None).ran) == 1
    info = _metrics(run)["executor_info"]
    history = [h["val_metric"] for h in info["history"]]
    assert info["val_accuracy"] == max(history) == 50.0 and history[0] == 0.0
    # the best epoch's weights, reloaded by `harness eval`, score the val split the same
    assert main(["eval", str(run), "--split", "val", *OPTS]) == 0
    val = json.loads((run / "eval" / "val" / "metrics.json").read_text())["tasks"]["jigsaw"]
    assert (val["accuracy"], val["parse_failures"], val["n"]) == (50.0, 0, 4)
    assert main(["eval", str(run), *OPTS]) == 0
    assert _predictions(run / "eval" / "test") == _predictions(run)
    assert {p["raw"] for p in _predictions(run)} == {"(A)"}
    capsys.readouterr()


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--backbone", BACKBONE, "--task", "jigsaw", "--method", "livrr", "--out", "x"],
     "unknown method 'livrr'; valid methods:"),
    (["train", "--backbone", "tiny-qwen9", "--task", "jigsaw", "--method", "livr", "--out", "x"],
     "unknown backbone 'tiny-qwen9'; valid:"),
    (["eval", "no-such-run"], "is not a run folder"),
    (["train", "--backbone", BACKBONE, "--task", "jigsaw", "--method", "livr", "--out", "x",
      "--executor-opt", "colour=red"], "unknown executor option(s) colour; valid executor options: source"),
    (["eval", "x", "--executor-opt", "batch_size=many"], "batch_size='many': expected int"),
])
def test_bad_input_is_refused_before_anything_runs(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def _trainable(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {n: tuple(p.shape) for n, p in model.named_parameters() if p.requires_grad}


def test_each_method_maps_onto_livr_core():
    options = ModelOptions(device="cpu")

    def trainable(method: str) -> dict[str, tuple[int, ...]]:
        return _trainable(prepare(BACKBONE, get_method(method), options, 42).model)

    def delta(params: dict) -> list[tuple[int, ...]]:
        return [s for n, s in params.items() if "trainable_tokens" in n]

    sft, livr = trainable("direct_sft"), trainable("livr")
    assert sft and all("lora_" in n for n in sft) and not delta(sft)
    assert all("vision" not in n and "visual" not in n for n in livr)
    assert delta(livr) == [(16, 64)]  # K=16 rows of the 64-wide tiny embedding
    assert set(livr) - set(sft) == {n for n in livr if "trainable_tokens" in n}
    assert delta(trainable("livr_shared")) == [(1, 64)]
    prompt = trainable("prompt_tuning")
    assert list(prompt.values()) == [(16, 64)]  # the latent rows and nothing else
    full = trainable("livr_mirage")
    assert delta(full) == [(4, 64)] and not any("lora_" in n for n in full)
    assert any("language_model.layers.0.mlp" in n for n in full)
    assert not any("visual" in n for n in full)


def test_image_twice_and_latent_position_reach_the_encoder():
    options = ModelOptions(device="cpu")
    record = records("jigsaw", "test", 1)[0]
    once = prepare(BACKBONE, get_method("direct_sft"), options, 42)
    twice = prepare(BACKBONE, get_method("image_twice"), options, 42)
    types_once = once.encoder(to_samples([record])).token_types
    types_twice = twice.encoder(to_samples([record], image_twice=True)).token_types
    image = int(TokenType.IMAGE)
    assert int((types_twice == image).sum()) == 2 * int((types_once == image).sum()) == 16
    before = prepare(BACKBONE, get_method("livr_latents_before_prompt"), options, 42)
    after = prepare(BACKBONE, get_method("livr"), options, 42)
    for prepared, first_latent_after_prompt_text in ((before, False), (after, True)):
        ids = prepared.encoder.encode(to_samples([record])[0], with_answer=False)
        latent = (ids.token_types == int(TokenType.LATENT)).nonzero()[:, 0]
        text = prepared.encoder.tokenizer.decode(ids.input_ids[: int(latent[0])])
        assert ("(B) the second image" in text) is first_latent_after_prompt_text
        assert len(latent) == 16 and int(latent[-1] - latent[0]) == 15  # contiguous


def test_fingerprint_holds_what_changes_results():
    base = make_executor("livr", {"device": "cpu"}).fingerprint()
    assert base["train"]["weight_decay"] == 0.01 and base["train"]["warmup_ratio"] == 0.05
    assert "lr" not in base["train"] and "save_every" not in base["train"]
    assert base["lora"] == {"r": 16, "alpha": 32, "dropout": 0.05}
    same = LivrExecutor(device="cuda", batch_size="2", source="/models/x", progress="no")
    assert same.fingerprint() == base
    assert LivrExecutor(max_new_tokens="32").fingerprint() != base
    assert LivrExecutor(max_pixels="1000").fingerprint() != base
    with pytest.raises(ConfigError, match="precision='fp16': use auto, bf16 or fp32"):
        LivrExecutor(precision="fp16")
    assert replace(ModelOptions(), source=None, models_dir="/nowhere").source_for("x") is None


def test_train_batch_size_keeps_the_effective_batch():
    from harness.cells import CellConfig
    from harness.train_executor import train_config

    cell = CellConfig("table1", "tiny-llava", "counting", get_method("livr"), ("counting",),
                      ("counting",))
    paper = train_config(cell, ModelOptions())
    assert (paper.per_device_batch_size, paper.grad_accumulation) == (1, 8)
    fast = train_config(cell, ModelOptions.parse({"train_batch_size": "4"}))
    assert (fast.per_device_batch_size, fast.grad_accumulation) == (4, 2)
    assert LivrExecutor(train_batch_size="8").fingerprint() != LivrExecutor().fingerprint()
    assert "train_batch_size" not in LivrExecutor().fingerprint()  # old stores keep their hashes
    with pytest.raises(ConfigError, match="train_batch_size=3: must divide the effective batch "
                                         "of 8"):
        ModelOptions.parse({"train_batch_size": "3"})


def test_planning_with_the_livr_executor_imports_no_model_stack():
    """`harness run --dry-run` hashes cells with this executor's fingerprint: that must not
    import torch, transformers or peft (seconds each), and must give the same hash inputs."""
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from harness.executor import executor_identity, make_executor\n"
        "identity = executor_identity(make_executor('livr', {'device': 'cpu'}))\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'identity': identity}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    answer = json.loads(out.stdout)
    assert answer["heavy"] == []
    loaded = json.loads(json.dumps(executor_identity(make_executor("livr", {"device": "cpu"}))))
    assert answer["identity"] == loaded
    with pytest.raises(ConfigError, match="dtype='fp8': use auto or a torch dtype name"):
        LivrExecutor(dtype="fp8")
    from harness.options import _DTYPES  # the torch-free list must name real torch dtypes

    assert all(isinstance(getattr(torch, name), torch.dtype) for name in _DTYPES if name != "auto")
