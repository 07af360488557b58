"""`harness diagnose` on tiny trained runs: diagnostics.json and the PNGs, exact pixel invariance
of the bottleneck without latents, attention masses as distributions, runs without latents, the
summary beside the paper's numbers."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tiny backbones are built in code; never download

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from threadpoolctl import threadpool_limits

from harness.cli import main
from harness.diagnose import CONDITIONS, DiagnoseConfig, format_summary, tsne_records
from harness.errors import ConfigError
from harness.modeling import generate_answers
from harness.options import ModelOptions
from harness.paper import DIAGNOSTICS
from harness.run_folder import SplitData, load_run
from harness.samples import to_samples
from tests.harness.image_splits import records, write_image_splits

BACKBONE = "tiny-qwen2.5-vl"
OPTS = ["--executor-opt", "device=cpu", "--executor-opt", "progress=0"]


pytestmark = pytest.mark.usefixtures("single_thread")  # conftest.py


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sizes = {"train": 8, "val": 4, "test": 6}
    return write_image_splits(tmp_path_factory.mktemp("diag") / "built", ["jigsaw"], sizes)


def _train(built: Path, out: Path, method: str) -> Path:
    with threadpool_limits(1):
        torch.set_num_threads(1)
        assert main(["train", "--backbone", BACKBONE, "--task", "jigsaw", "--method", method,
                     "--epochs", "2", "--built", str(built), "--out", str(out), *OPTS]) == 0
    return out


@pytest.fixture(scope="module")
def livr_run(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(built, tmp_path_factory.mktemp("runs") / "livr", "livr")


def test_diagnose_writes_diagnostics_and_pictures(livr_run: Path, capsys):
    assert main(["diagnose", str(livr_run), "--overlays", "2", "--tsne-examples", "3", *OPTS]) == 0
    out = capsys.readouterr().out
    assert "bottleneck, latents removed" in out and "6/6 answers identical" in out
    folder = livr_run / "diagnostics"
    result = json.loads((folder / "diagnostics.json").read_text())
    assert (result["method"], result["split"], result["n"], result["latents"]) == (
        "livr", "test", 6, 16)
    assert result["weights"].endswith("checkpoints/best")
    assert set(result["accuracy"]) == set(CONDITIONS)
    for condition in result["accuracy"].values():
        assert 0.0 <= condition["macro"] <= 100.0
    # the standard condition is the run's own evaluation
    stored = json.loads((livr_run / "metrics.json").read_text())
    assert result["accuracy"]["standard"]["tasks"]["jigsaw"] == (
        stored["tasks"]["jigsaw"]["accuracy"])
    assert result["baselines"] == {"jigsaw": {"random": 50.0, "constant": 50.0}}
    invariance = result["pixel_invariance"]
    assert invariance["identical_answers"] == invariance["examples"] == 6
    assert invariance["max_logit_diff"] == 0.0
    attention = result["attention"]
    kinds = attention["answer_by_key_kind"]
    assert all(0.0 <= v <= 1.0 for v in kinds.values())
    assert sum(kinds.values()) == pytest.approx(1.0, abs=1e-5)
    assert 0.0 < attention["answer_to_latent"] == kinds["latent"] < 1.0
    assert attention["examples"] == 6
    assert result["tsne_examples"] == {"jigsaw": 3}
    figures = result["figures"]
    assert [Path(p).name for p in figures["overlays"]] == [
        "attention-livr_test_Jigsaw_1.png", "attention-livr_test_Jigsaw_2.png"]
    for path in [figures["tsne"], *figures["overlays"]]:
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 100


def test_tsne_takes_the_first_examples_of_each_task_by_default(tmp_path: Path):
    """Paper Sec. 4.5: "the first 50 evaluation examples of each of the six tasks"; the old
    reading (the first 50 in all) is the option tsne_per="total"."""
    tasks = ("jigsaw", "localization")
    built = write_image_splits(tmp_path / "built", list(tasks), {"test": 6})
    cell = SimpleNamespace(eval_tasks=tasks, limit=None, train_per_task=None)
    data = SplitData(built, cell, "test")
    per_task = tsne_records(data, DiagnoseConfig(tsne_examples=4))
    assert DiagnoseConfig().tsne_per == "task" and DiagnoseConfig().tsne_examples == 50
    for task in tasks:
        assert [r.idx for r in per_task[task]] == [r.idx for r in data.records("test", task)[:4]]
    total = tsne_records(data, DiagnoseConfig(tsne_examples=8, tsne_per="total"))
    assert [len(total[t]) for t in tasks] == [6, 2]
    assert [r.idx for r in total["localization"]] == [
        r.idx for r in data.records("test", "localization")[:2]]
    limited = SplitData(built, SimpleNamespace(eval_tasks=tasks, limit=3, train_per_task=None),
                        "test")
    assert [len(v) for v in tsne_records(limited, DiagnoseConfig(tsne_examples=4)).values()] == [3, 3]
    with pytest.raises(ConfigError, match="--tsne-per"):
        DiagnoseConfig(tsne_per="each")


def test_bottleneck_without_latents_ignores_the_image_exactly(livr_run: Path):
    loaded = load_run(livr_run, ModelOptions(device="cpu"))
    record = records("jigsaw", "test", 1)[0]
    sample = to_samples([record], with_answer=False)[0]
    rng = np.random.default_rng(7)
    other = replace(sample, images=[
        Image.fromarray(rng.integers(0, 256, (im.height, im.width, 3), dtype=np.uint8))
        for im in sample.images
    ])

    def logits(condition: str, s):
        config = replace(CONDITIONS[condition], return_logits=True)
        g = generate_answers(loaded.prepared, [s], loaded.options, config)[0]
        return g.token_ids, g.logits

    ids_a, logits_a = logits("bottleneck_no_latents", sample)
    ids_b, logits_b = logits("bottleneck_no_latents", other)
    assert ids_a == ids_b and np.array_equal(logits_a, logits_b)  # bit for bit
    # the images do reach the answer through the latents, and under the standard mask
    for condition in ("bottleneck", "standard"):
        _, a = logits(condition, sample)
        _, b = logits(condition, other)
        steps = min(len(a), len(b))
        finite = np.isfinite(a[:steps])
        assert np.abs(a[:steps][finite] - b[:steps][finite]).max() > 1e-6, condition


def test_run_without_latents(built: Path, tmp_path: Path, capsys):
    run = _train(built, tmp_path / "zs", "zero_shot")
    capsys.readouterr()
    assert main(["diagnose", str(run), "--tsne-examples", "2", *OPTS]) == 0
    assert "(no latents)" in capsys.readouterr().out
    result = json.loads((run / "diagnostics" / "diagnostics.json").read_text())
    accuracy = result["accuracy"]
    assert accuracy["no_latents"] == accuracy["standard"]
    assert accuracy["bottleneck_no_latents"] == accuracy["bottleneck"]
    assert result["attention"] is None and result["figures"]["overlays"] == []
    assert result["latents"] is None and result["weights"] is None
    assert result["pixel_invariance"]["max_logit_diff"] == 0.0
    assert Path(result["figures"]["tsne"]).is_file()


def test_summary_puts_the_papers_numbers_beside_ours():
    key = ("qwen3-vl-4b", "localization", "livr")
    conditions = {c: {"macro": 50.0, "tasks": {}, "parse_failure_rate": {}} for c in CONDITIONS}
    result = {
        "backbone": key[0], "method": key[2], "tasks": [key[1]], "split": "test", "n": 122,
        "latents": 16, "accuracy": conditions,
        "baselines": {key[1]: {"random": 50.0, "constant": 57.38}},
        "pixel_invariance": {"identical_answers": 8, "examples": 8, "max_logit_diff": 0.0},
        "attention": {"answer_to_latent": 0.05},
        "figures": {"tsne": "tsne.png", "overlays": ["a.png"]},
        "paper": {key[1]: DIAGNOSTICS[key]},
    }
    lines = format_summary(result).splitlines()
    assert lines[0] == "Diagnostics: Qwen3-VL-4B, livr, Loc, test split, 122 examples"
    row = {line[:30].strip(): line[30:].split() for line in lines[2:6]}
    assert row == {"standard (causal)": ["50.00", "83.61"],
                   "latents removed": ["50.00", "76.23"],
                   "bottleneck mask at test": ["50.00", "70.49"],
                   "bottleneck, latents removed": ["50.00", "43.44"]}
    assert lines[-2].split()[-2:] == ["0.0500", "0.076"]
