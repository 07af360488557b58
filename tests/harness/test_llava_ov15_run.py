"""LLaVA-OneVision-1.5 from a real-configuration checkpoint directory through the command line,
as a user with the downloaded checkpoint runs it: `harness train` with `--executor-opt
source=DIR` (no `--trust-remote-code`), then `harness eval` and `harness diagnose` of the run
folder, whose attention read-outs need the language model switched to eager."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the checkpoint is written locally; never download

import json
from pathlib import Path

import pytest
from PIL import Image

from harness.cli import main
from livr_core.realconfig.llava_ov15 import write_llava_ov15_checkpoint
from tests.harness.image_splits import write_image_splits

BACKBONE = "llava-onevision-1.5-4b"

pytestmark = pytest.mark.usefixtures("single_thread")  # conftest.py


def test_train_eval_and_diagnose_a_run_folder(tmp_path: Path, capsys) -> None:
    built = write_image_splits(tmp_path / "built", ["jigsaw"], {"train": 4, "val": 2, "test": 3})
    checkpoint = write_llava_ov15_checkpoint(tmp_path / "LLaVA-OneVision-1.5-4B-Instruct")
    # float32: the checkpoint's own dtype (bf16) is for GPUs
    opts = ["--executor-opt", "device=cpu", "--executor-opt", "progress=0",
            "--executor-opt", f"source={checkpoint}", "--executor-opt", "dtype=float32",
            "--executor-opt", "max_new_tokens=4"]  # answers are "(A)"/"(B)": 4 steps hold them
    run = tmp_path / "run"
    assert main(["train", "--backbone", BACKBONE, "--task", "jigsaw", "--method", "livr",
                 "--epochs", "2", "--built", str(built), "--out", str(run), *opts]) == 0
    trained = json.loads((run / "metrics.json").read_text())
    assert trained["tasks"]["jigsaw"]["n"] == 3

    assert main(["eval", str(run), "--split", "val", *opts]) == 0
    evaluated = json.loads((run / "eval" / "val" / "metrics.json").read_text())
    assert evaluated["tasks"]["jigsaw"]["n"] == 2

    capsys.readouterr()
    assert main(["diagnose", str(run), "--overlays", "1", "--tsne-examples", "3", *opts]) == 0
    assert "3/3 answers identical" in capsys.readouterr().out
    result = json.loads((run / "diagnostics" / "diagnostics.json").read_text())
    assert result["backbone"] == BACKBONE and result["weights"].endswith("checkpoints/best")
    invariance = result["pixel_invariance"]
    assert invariance["identical_answers"] == invariance["examples"] == 3
    assert invariance["max_logit_diff"] == 0.0  # the bottleneck without latents, bit for bit
    kinds = result["attention"]["answer_by_key_kind"]  # eager weights, read from every layer
    assert sum(kinds.values()) == pytest.approx(1.0, abs=1e-5)
    assert 0.0 < result["attention"]["answer_to_latent"] < 1.0
    for path in [result["figures"]["tsne"], *result["figures"]["overlays"]]:
        with Image.open(path) as image:
            assert image.format == "PNG"
