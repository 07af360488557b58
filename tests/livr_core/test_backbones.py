"""Backbone registry, tiny builders, LoRA target selection (LLaVA-OneVision-1.5 and the
remote-code opt-in: test_llava_ov15.py)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import torch
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from livr_core.backbones import BACKBONES, BackboneUnavailable, get_backbone, load_backbone
from livr_core.backbones.base import BackboneAdapter
from livr_core.backbones.llava_ov import RemoteCodeNotAllowed
from livr_core.configs import LoadOptions


def test_unknown_backbone_lists_the_known_ones() -> None:
    with pytest.raises(KeyError) as error:
        get_backbone("qwen9-vl")
    for name in BACKBONES:
        assert name in str(error.value)


def test_every_entry_names_an_importable_loader_and_adapter() -> None:
    # The registry names them as "module:attribute" (imported on first load, so listing the
    # backbones costs no model import): a typo there would only show when that backbone loads.
    for spec in BACKBONES.values():
        module, _, function = spec.loader.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), spec.name
        assert isinstance(spec.adapter, BackboneAdapter), spec.name
    assert type(get_backbone("qwen3-vl-4b").adapter).__name__ == "QwenVLAdapter"
    assert type(get_backbone("tiny-llava").adapter) is BackboneAdapter


def test_remote_code_backbone_refuses_without_opt_in(tmp_path: Path) -> None:
    # A local checkpoint whose config names no architecture transformers (or we) implement.
    (tmp_path / "config.json").write_text('{"model_type": "custom_remote_model"}')
    with pytest.raises(RemoteCodeNotAllowed, match="trust_remote_code=True"):
        load_backbone("llava-onevision-1.5-4b", LoadOptions(source=str(tmp_path)))


def test_registry_has_the_paper_backbones() -> None:
    sources = {spec.default_source for spec in BACKBONES.values()}
    assert {
        "Qwen/Qwen2.5-VL-3B-Instruct",
        "Qwen/Qwen3-VL-4B-Instruct",
        "lmms-lab/LLaVA-OneVision-1.5-4B-Instruct",
    } <= sources


def test_tiny_backbone_is_deterministic_from_its_seed(backbone_name: str) -> None:
    first = load_backbone(backbone_name).model.state_dict()
    second = load_backbone(backbone_name).model.state_dict()
    other = load_backbone(backbone_name, LoadOptions(seed=1)).model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_tiny_backbone_ties_embeddings_and_has_spare_rows(backbone_name: str) -> None:
    backbone = load_backbone(backbone_name)
    model = backbone.model
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight
    assert model.get_input_embeddings().weight.shape[0] >= len(backbone.tokenizer) + 32


def test_qwen_tiny_backbones_pin_the_pil_image_backend() -> None:
    for name in ("tiny-qwen2.5-vl", "tiny-qwen3-vl"):
        assert isinstance(load_backbone(name).processor.image_processor, Qwen2VLImageProcessorPil)


def test_lora_regex_matches_all_language_model_projections_and_no_vision_module(
    backbone_name: str,
) -> None:
    backbone = load_backbone(backbone_name)
    pattern = re.compile(backbone.adapter.lora_target_regex)
    names = [n for n, m in backbone.model.named_modules() if isinstance(m, torch.nn.Linear)]
    matched = [n for n in names if pattern.fullmatch(n)]
    layers = backbone.model.config.get_text_config().num_hidden_layers
    assert len(matched) == 7 * layers
    assert all(".language_model." in n for n in matched)
    vision = [n for n in names if ".visual." in f".{n}." or ".vision_tower." in f".{n}."]
    assert vision and not any(pattern.fullmatch(n) for n in vision)


@pytest.mark.parametrize("name", ["tiny-qwen2.5-vl", "tiny-llava"])
def test_vision_towers_reuse_language_model_names(name: str) -> None:
    """Why the regex is anchored: a bare name list would put LoRA on these vision modules."""
    names = [n for n, _ in load_backbone(name).model.named_modules()]
    lm_names = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    assert any(n.endswith(lm_names) and "language_model" not in n for n in names)


@pytest.mark.parametrize(
    ("tiny", "real", "token_pixels"),
    [("tiny-qwen2.5-vl", "qwen2.5-vl-3b", 28 * 28), ("tiny-qwen2.5-vl", "qwen2.5-vl-7b", 28 * 28),
     ("tiny-qwen3-vl", "qwen3-vl-4b", 32 * 32)],
)
def test_real_loader_reads_a_local_directory_offline(
    tiny: str, real: str, token_pixels: int, tmp_path: Path
) -> None:
    saved = load_backbone(tiny)
    saved.model.save_pretrained(tmp_path)
    saved.processor.save_pretrained(tmp_path)
    budget = 8 * token_pixels
    loaded = load_backbone(real, LoadOptions(source=str(tmp_path), max_pixels=budget))
    expected = saved.model.state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.model.state_dict().items())
    image_processor = loaded.processor.image_processor
    assert isinstance(image_processor, Qwen2VLImageProcessorPil)  # PIL pinned despite torchvision
    assert image_processor.size["longest_edge"] == budget
    assert loaded.model.config.get_text_config()._attn_implementation == "sdpa"


@pytest.fixture
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache, offline (the suite never downloads)."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_a_checkpoint_that_is_not_there_fails_at_once(
    empty_hub_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from huggingface_hub import constants

    start = time.monotonic()
    with pytest.raises(BackboneUnavailable, match=r"Qwen/Qwen2.5-VL-3B-Instruct is not in the "
                       r"local Hugging Face cache and HF_HUB_OFFLINE is set.*source=DIR"):
        load_backbone("qwen2.5-vl-3b")
    # Online but unreachable (nothing listens on 127.0.0.1:9): one refused request, no retries.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(BackboneUnavailable, match=r"the Hub cannot be reached \(ConnectError"):
        load_backbone("qwen3-vl-4b")
    assert time.monotonic() - start < 5  # transformers' own retries take ~25 s per file
    with pytest.raises(BackboneUnavailable, match="checkpoint directory .*nowhere does not exist"):
        load_backbone("qwen2.5-vl-3b", LoadOptions(source=str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneUnavailable, match="not a checkpoint directory .*no config.json"):
        load_backbone("qwen2.5-vl-3b", LoadOptions(source=str(tmp_path / "empty")))


def test_a_cached_hub_checkpoint_loads_offline_from_its_snapshot(
    empty_hub_cache: Path, real_checkpoint
) -> None:
    """The Hub id with the Hub out of reach: the cached snapshot (the layout `hf download`
    leaves in the cache) is loaded, without network."""
    directory = real_checkpoint("qwen2.5-vl-3b")
    repo = empty_hub_cache / "models--Qwen--Qwen2.5-VL-3B-Instruct"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    for file in directory.iterdir():
        (snapshot / file.name).symlink_to(file)
    spec = get_backbone("qwen2.5-vl-3b")
    assert spec.resolve_source("Qwen/Qwen2.5-VL-3B-Instruct") == str(snapshot)
    loaded = load_backbone("qwen2.5-vl-3b")
    assert loaded.model.config.get_text_config().num_hidden_layers == 2  # the cached one


def test_local_names_include_the_hub_folder_names() -> None:
    assert get_backbone("qwen2.5-vl-3b").local_names() == (
        "qwen2.5-vl-3b", "Qwen2.5-VL-3B-Instruct", "Qwen/Qwen2.5-VL-3B-Instruct")
    assert get_backbone("tiny-qwen2.5-vl").local_names() == ("tiny-qwen2.5-vl",)
