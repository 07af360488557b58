"""`harness run --table mirage` end to end on the tiny backbone: splits built by the real builders
(Jigsaw from the COCO and BLINK miniatures, VSP generated) with their helper images, then
zero-shot, Mirage and LIVR trained and scored, VSP by simulation under every rule."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import contextlib
import io
import json
from pathlib import Path

import pytest

from builders import miniature
from builders.build import BuildRequest, run_build
from harness.cli import main
from harness.methods import get_method

BACKBONE = "tiny-qwen2.5-vl"
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mirage")
    coco = miniature.write("coco", root / "src")
    blink = miniature.write("blink", root / "src")
    out = root / "built"
    for task, split, source, n in (("jigsaw", "train", coco, 4), ("jigsaw", "val", coco, 2),
                                   ("jigsaw", "test", blink, 3), ("vsp", "train", root, 4),
                                   ("vsp", "val", root, 2), ("vsp", "test", root, 3)):
        run_build(BuildRequest(task, split, source / "none" if task == "vsp" else source, out,
                               n=n, progress=False))
    return out


def test_mirage_table_end_to_end(built: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    args = ["run", "--table", "mirage", "--backbones", BACKBONE, "--epochs", "2", "--limit", "4",
            "--built", str(built), "--runs", str(runs), "--executor-opt", "device=cpu",
            "--executor-opt", "progress=0"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0, out.getvalue()
    printed = out.getvalue()
    assert "6 ran, 0 already done" in printed and "Mirage" in printed and "VSP" in printed
    cells = runs / "mirage" / BACKBONE
    mirage = json.loads((cells / "vsp" / "mirage" / "metrics.json").read_text())
    history = mirage["executor_info"]["history"]
    assert [(h["stage"], h["epoch"]) for h in history] == [(1, 1), (2, 1)]  # 10+10 scaled to 1+1
    vsp = mirage["tasks"]["vsp"]
    assert vsp["n"] == 3 and set(vsp["variants"]) == {"mirage", "vsp", "exact", "strict"}
    predictions = [json.loads(x) for x in
                   (cells / "vsp" / "mirage" / "predictions.jsonl").read_text().splitlines()]
    assert all(set(p["variants"]) == {"mirage", "vsp", "exact", "strict"} for p in predictions)
    config = json.loads((cells / "jigsaw" / "mirage" / "config.json").read_text())
    assert config["method"]["objective"] == "mirage" and config["method"]["lr"] == 1e-5
    livr = json.loads((cells / "jigsaw" / "livr_mirage" / "config.json").read_text())
    assert "objective" not in livr["method"]  # LIVR cells keep their identity (and hash)
    report = json.loads((runs / "mirage" / "report" / "report.json").read_text())
    assert "vsp" in json.dumps(report) and "mirage" in json.dumps(report)
    # `harness eval` / `diagnose` of a VSP run answer with the plan budget the run was tested
    # with, not the 16 tokens of a letter.
    from builders.registry import load_registry
    from harness.options import ModelOptions
    from harness.run_folder import load_run

    budget = int(load_registry().resolve("vsp").params["max_new_tokens"])
    assert budget > ModelOptions().max_new_tokens
    loaded = load_run(cells / "vsp" / "livr_mirage", ModelOptions(device="cpu"))
    assert loaded.options.max_new_tokens == budget


def test_mirage_method_settings_follow_the_protocol():
    method = get_method("mirage")
    assert (method.latents, method.epochs, method.lr, method.finetune) == (4, (10, 10), 1e-5, "full")
    assert method.latent_position == "answer_start" and method.mirage_ce_weight == 0.1
    assert method.with_changes(mirage_ce_weight=0.5).identity()["mirage_ce_weight"] == 0.5
