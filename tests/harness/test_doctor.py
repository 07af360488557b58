"""`harness doctor` on a tiny backbone and on a real-configuration directory, and the faults it
must report: a missing checkpoint, a bottleneck that leaks, a pixel budget that is ignored."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.doctor import CHECKS

pytestmark = pytest.mark.usefixtures("single_thread")  # conftest.py
NAMES = [name for name, _, _ in CHECKS]
FAST = ["--executor-opt", "device=cpu", "--executor-opt", "batch_size=2",
        "--executor-opt", "max_new_tokens=2", "--steps", "1"]


def _doctor(tmp_path: Path, backbone: str, *extra: str) -> tuple[int, dict, list[str], str]:
    out = tmp_path / "doctor.json"
    code = main(["doctor", "--backbone", backbone, *FAST, "--json", str(out), *extra])
    result = json.loads(out.read_text())
    return code, result, [c["status"] for c in result["checks"]], out.read_text()


def test_doctor_passes_on_a_tiny_backbone(tmp_path: Path, capsys) -> None:
    code, result, statuses, _ = _doctor(tmp_path, "tiny-qwen2.5-vl", "--image-size", "112x84")
    assert code == 0 and statuses == ["ok"] * len(NAMES)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[1:-1]] == [f"ok    {n}" for n in NAMES]
    assert lines[-1] == "all checks ok"
    checks = {c["name"]: c["data"] for c in result["checks"]}
    assert checks["bottleneck"]["max_difference"] == 0.0
    assert checks["bottleneck"]["control_difference"] > 0.0
    assert checks["pixel budget"]["fewer"] < checks["pixel budget"]["tokens"]
    assert checks["steps"]["livr"]["tokens"] == checks["steps"]["sft"]["tokens"] + 16  # K latents
    assert checks["table 1 estimate"]["cells"] == 27  # 9 tasks x 3 methods


def test_doctor_on_a_real_configuration_directory(tmp_path: Path, real_checkpoint, capsys) -> None:
    directory = real_checkpoint("qwen2.5-vl-3b")
    code, result, statuses, _ = _doctor(tmp_path, "qwen2.5-vl-3b", "--image-size", "56x56",
                                        "--executor-opt", f"source={directory}")
    assert code == 0 and statuses == ["ok"] * len(NAMES)
    out = capsys.readouterr().out
    assert "16 ids 151665..151680 in unused rows (matrix 151936 rows, tokenizer 151665)" in out
    assert "the template adds the system turn" in out and "You are a helpful assistant." in out
    assert "640x480 -> 391 tokens under max_pixels=12845056" in out
    assert result["source"] == str(directory.resolve())


def test_doctor_fails_at_once_without_a_checkpoint(tmp_path: Path, monkeypatch, capsys) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    start = time.monotonic()
    code, _, statuses, _ = _doctor(tmp_path, "qwen3-vl-4b")
    assert time.monotonic() - start < 10
    assert code == 1 and statuses == ["ok", "ok", "ok", "FAIL"] + ["skip"] * (len(NAMES) - 4)
    out = capsys.readouterr().out
    assert "FAIL  load: qwen3-vl-4b: Qwen/Qwen3-VL-4B-Instruct is not in the local" in out
    assert "--executor-opt source=DIR" in out and out.rstrip().endswith("1 FAIL: load")


def test_doctor_reports_a_leaking_bottleneck_and_an_ignored_budget(tmp_path: Path, monkeypatch,
                                                                   capsys) -> None:
    from livr_core.backbones import tiny
    from livr_core.configs import RULES, MaskRules, MaskVariant

    monkeypatch.setitem(RULES, MaskVariant.BOTTLENECK, MaskRules())  # the mask bars nothing
    monkeypatch.setattr(tiny, "image_processor_size", lambda current, options: None)
    code, _, statuses, _ = _doctor(tmp_path, "tiny-qwen2.5-vl", "--image-size", "112x84")
    assert code == 1
    failed = dict(zip(NAMES, statuses))
    assert failed["bottleneck"] == failed["pixel budget"] == "FAIL"
    assert [n for n, s in failed.items() if s != "ok"] == ["pixel budget", "bottleneck"]
    out = capsys.readouterr().out
    assert "the image leaks past the bottleneck" in out
    assert "the budget is not applied" in out
    assert out.rstrip().endswith("2 FAIL: pixel budget, bottleneck")
