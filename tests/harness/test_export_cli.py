"""`harness export`: a trained run becomes a stock checkpoint whose greedy answers, from stock
transformers alone, are the run's own recorded answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import AutoModelForImageTextToText, AutoProcessor

from builders.io import read_split, split_dir
from harness.cli import main
from livr_core.export import read_livr_info
from tests.harness.image_splits import write_image_splits

BACKBONE = "tiny-qwen2.5-vl"
OPTS = ["--executor-opt", "device=cpu", "--executor-opt", "progress=0"]

pytestmark = pytest.mark.usefixtures("single_thread")  # conftest.py


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("export")
    built = write_image_splits(root / "built", ["jigsaw"], {"train": 8, "val": 2, "test": 3})
    run = root / "run"
    assert main(["train", "--backbone", BACKBONE, "--task", "jigsaw", "--method", "livr",
                 "--epochs", "2", "--checkpoint", "final", "--built", str(built),
                 "--out", str(run), *OPTS]) == 0
    # Two tiny updates barely move the weights and every answer comes out alike; move every
    # trained tensor (LoRA, latent rows) far, as real training does, then let `harness eval`
    # record the answers of exactly these weights.
    weights = run / "checkpoints" / "final" / "trainable.safetensors"
    generator = torch.Generator().manual_seed(0)
    tensors = {k: v + torch.randn(v.shape, generator=generator) * 0.5
               for k, v in load_file(str(weights)).items()}
    save_file(tensors, str(weights))
    assert main(["eval", str(run), *OPTS]) == 0
    return built, run


def test_export_answers_like_the_run_with_stock_transformers_only(run, tmp_path, capsys):
    built, run_dir = run
    out = tmp_path / "export"
    assert main(["export", str(run_dir), "--out", str(out), *OPTS]) == 0
    said = capsys.readouterr().out
    info = read_livr_info(out)
    assert f"K={info['k']}" in said and info["k"] == 16
    assert info["training"]["method_name"] == "livr"
    assert info["training"]["weights"].endswith("final")
    recorded = {json.loads(line)["idx"]: json.loads(line)["raw"]
                for line in (run_dir / "eval" / "test" / "predictions.jsonl").read_text()
                .splitlines()}
    assert len(set(recorded.values())) == len(recorded)  # answers that tell models apart
    model = AutoModelForImageTextToText.from_pretrained(out).eval()
    processor = AutoProcessor.from_pretrained(out)
    for record in read_split(split_dir(built, "jigsaw", "test")):
        images = [Image.open(__import__("io").BytesIO(b)).convert("RGB") for b in record.images]
        content = [{"type": "image"} for _ in images]
        content.append({"type": "text", "text": record.prompt + info["latent_sequence"]})
        text = processor.apply_chat_template([{"role": "user", "content": content}],
                                             add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[text], images=images, return_tensors="pt")
        with torch.no_grad():
            ids = model.generate(**inputs, max_new_tokens=16, do_sample=False)
        answer = processor.decode(ids[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        assert answer == recorded[record.idx], record.idx


def test_export_refuses_an_occupied_folder_before_loading_anything(run, tmp_path, capsys):
    _, run_dir = run
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["export", str(run_dir), "--out", str(out), *OPTS]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"
