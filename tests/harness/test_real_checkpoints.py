"""The harness on real-configuration checkpoint directories, through the options a user passes.

`harness train --executor-opt source=DIR` on a directory laid out like the published download
(`livr_core.realconfig`), then `harness eval` / `diagnose` of the run folder with no source at
all: the run's recorded source, dtype and attention are its defaults. Also: the pixel budget of
`--executor-opt min_pixels/max_pixels` reaching the model, `models_dir` finding a download by its
Hub folder name, and a missing checkpoint failing at once with the options to fix it.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.modeling import load_model
from harness.options import ModelOptions
from harness.run_folder import load_run
from harness.samples import to_samples
from livr_core.token_types import TokenType
from tests.harness.image_splits import records, write_image_splits

pytestmark = pytest.mark.usefixtures("single_thread")  # conftest.py
DEVICE = ["--executor-opt", "device=cpu", "--executor-opt", "progress=0",
          "--executor-opt", "max_new_tokens=2"]  # answers are "(A)"; the model is random


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sizes = {"train": 4, "val": 2, "test": 3}
    return write_image_splits(tmp_path_factory.mktemp("real") / "built", ["jigsaw"], sizes)


@pytest.fixture
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No model in the Hugging Face cache and no Hub: a run's recorded source is all there is."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return tmp_path / "hub"


def _train(built: Path, out: Path, backbone: str, method: str, source: Path, *extra: str) -> None:
    assert main(["train", "--backbone", backbone, "--task", "jigsaw", "--method", method,
                 "--epochs", "2", "--limit", "2", "--built", str(built), "--out", str(out),
                 "--executor-opt", f"source={source}", *DEVICE, *extra]) == 0


def test_train_eval_diagnose_a_real_qwen25_directory(
    built: Path, tmp_path: Path, real_checkpoint, empty_hub_cache: Path, caplog, capsys
) -> None:
    directory = real_checkpoint("qwen2.5-vl-3b")
    run = tmp_path / "run"
    with caplog.at_level("WARNING", logger="livr_core.trainer"):
        _train(built, run, "qwen2.5-vl-3b", "livr", directory, "--checkpoint", "final")
    # `--epochs 2 --limit 2`: one update per stage, at learning rate 0: said, not silent.
    warned = [r.getMessage() for r in caplog.records if r.name == "livr_core.trainer"]
    assert len(warned) == 2 and all("learning rate 0" in m for m in warned)
    info = json.loads((run / "metrics.json").read_text())["executor_info"]
    assert info["source"] == str(directory.resolve())
    stored = json.loads((run / "config.json").read_text())["executor"]
    assert (stored["dtype"], stored["attn_implementation"]) == ("auto", "sdpa")
    capsys.readouterr()

    # No source given: the run's own is used (the Hub is out of reach and not needed).
    assert main(["eval", str(run), "--executor-opt", "device=cpu"]) == 0
    assert "jigsaw: accuracy" in capsys.readouterr().out
    evaluated = json.loads((run / "eval" / "test" / "metrics.json").read_text())
    assert evaluated["tasks"]["jigsaw"]["n"] == 2
    assert main(["diagnose", str(run), "--overlays", "1", "--tsne-examples", "2",
                 "--executor-opt", "device=cpu"]) == 0
    assert "2/2 answers identical" in capsys.readouterr().out  # bottleneck, latents removed
    result = json.loads((run / "diagnostics" / "diagnostics.json").read_text())
    assert result["pixel_invariance"]["max_logit_diff"] == 0.0
    assert result["weights"].endswith("checkpoints/final")

    # The recorded directory gone: a clear error at once, naming the options that fix it.
    moved = tmp_path / "moved"
    shutil.copytree(directory, moved, symlinks=True)
    shutil.rmtree(directory)
    try:
        start = time.monotonic()
        assert main(["eval", str(run), "--executor-opt", "device=cpu"]) == 2
        error = capsys.readouterr().err
        assert time.monotonic() - start < 30  # no minute of Hub retries (loading is the rest)
        assert f"checkpoint directory {directory} does not exist" in error
        assert "--executor-opt source=DIR" in error and "--executor-opt models_dir=DIR" in error
        # ... and an explicit source wins over the recorded one.
        assert main(["eval", str(run), "--executor-opt", "device=cpu",
                     "--executor-opt", f"source={moved}"]) == 0
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        shutil.copytree(moved, directory, symlinks=True)


def test_pixel_budget_option_reaches_a_real_qwen3_run(
    built: Path, tmp_path: Path, real_checkpoint
) -> None:
    """Qwen3-VL's published minimum (65,536 pixels) upscales a 56x56 image to 64 tokens; a run
    made with `min_pixels=16384` uses 16 per image, when it runs and when it is read back (a
    zero-shot run: the budget's path is the same for every method)."""
    directory = real_checkpoint("qwen3-vl-4b")
    run = tmp_path / "run"
    _train(built, run, "qwen3-vl-4b", "zero_shot", directory,
           "--executor-opt", "min_pixels=16384", "--executor-opt", "max_pixels=16384")
    loaded = load_run(run, ModelOptions(device="cpu"))
    assert (loaded.options.min_pixels, loaded.options.max_pixels) == (16384, 16384)
    sample = to_samples(records("jigsaw", "test", 1), with_answer=False)[0]
    encoded = loaded.prepared.encoder.encode(sample, with_answer=False)
    assert int((encoded.token_types == TokenType.IMAGE).sum()) == 2 * 16
    default = load_model("qwen3-vl-4b", ModelOptions(device="cpu", source=str(directory)))
    vision = default.processor.image_processor(images=sample.images, return_tensors="pt")
    assert [int(t.prod()) // 4 for t in vision["image_grid_thw"]] == [64, 64]


def test_models_dir_finds_a_download_by_its_hub_folder_name(
    tmp_path: Path, real_checkpoint, empty_hub_cache: Path
) -> None:
    directory = real_checkpoint("qwen2.5-vl-3b")
    models = tmp_path / "models"
    models.mkdir()
    options = ModelOptions(device="cpu", models_dir=str(models))
    start = time.monotonic()
    with pytest.raises(ConfigError) as error:
        load_model("qwen2.5-vl-3b", options)
    assert time.monotonic() - start < 5
    message = str(error.value)
    assert "Qwen/Qwen2.5-VL-3B-Instruct is not in the local Hugging Face cache" in message
    assert f"looked for {models / 'qwen2.5-vl-3b'}, {models / 'Qwen2.5-VL-3B-Instruct'}" in message
    (models / "Qwen2.5-VL-3B-Instruct").symlink_to(directory)  # `hf download --local-dir` name
    assert options.source_for("qwen2.5-vl-3b") == str(directory.resolve())
    (models / "Qwen2.5-VL-3B-Instruct").unlink()
    (models / "Qwen").mkdir()
    (models / "Qwen" / "Qwen2.5-VL-3B-Instruct").symlink_to(directory)  # <org>/<repo>
    assert options.source_for("qwen2.5-vl-3b") == str(directory.resolve())
    backbone = load_model("qwen2.5-vl-3b", options)
    assert backbone.model.config.get_text_config().num_hidden_layers == 2


def test_recorded_options_are_defaults_an_explicit_choice_overrides(tmp_path: Path) -> None:
    recorded = {"source": "/models/a"}
    assert ModelOptions().recorded(recorded).source == "/models/a"
    assert ModelOptions(source="/models/b").recorded(recorded).source == "/models/b"
    assert ModelOptions(models_dir="/models").recorded(recorded).source is None
    assert ModelOptions().recorded({}).source is None
    # result-changing settings are the run's own, whatever is passed
    stored = {"dtype": "bfloat16", "attn_implementation": "eager", "max_pixels": 1000}
    run = ModelOptions(dtype="float32").with_run_settings(stored)
    assert (run.dtype, run.attn_implementation, run.max_pixels) == ("bfloat16", "eager", 1000)
    relative = tmp_path / "rel"
    relative.mkdir()
    assert ModelOptions(source=str(relative)).source_for("x") == str(relative.resolve())
    with pytest.raises(ConfigError, match="attn_implementation='flex'"):
        ModelOptions.parse({"attn_implementation": "flex"})
