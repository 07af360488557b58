"""The `qwen2.5-vl-7b` backbone: the Qwen2.5-VL adapter on the 7B-Instruct checkpoint. Its real
configuration (fixtures/qwen2.5-vl-7b-config.json, copied from the published config.json) is
instantiated on the meta device, so the architecture is checked at full size without weights:
the published parameter count, LoRA on exactly the language model's projections, the image token
the adapter relies on. Loading from a local directory is test_backbones.py's parametrised test."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from livr_core.backbones import get_backbone
from livr_core.backbones.qwen import QwenVLAdapter

CONFIG = Path(__file__).parent / "fixtures" / "qwen2.5-vl-7b-config.json"
PUBLISHED_PARAMETERS = 8_292_166_656  # Qwen/Qwen2.5-VL-7B-Instruct's safetensors total


def test_registry_entry_points_at_the_7b_checkpoint():
    spec = get_backbone("qwen2.5-vl-7b")
    assert spec.default_source == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert isinstance(spec.adapter, QwenVLAdapter)


def test_real_7b_architecture_on_the_meta_device():
    config = Qwen2_5_VLConfig.from_dict(json.loads(CONFIG.read_text()))
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMETERS
    text = model.config.get_text_config()
    assert (text.hidden_size, text.num_hidden_layers, config.vision_config.out_hidden_size) == (
        3584, 28, 3584)
    assert config.image_token_id == 151655  # <|image_pad|>, the adapter's image token
    pattern = re.compile(get_backbone("qwen2.5-vl-7b").adapter.lora_target_regex)
    linear = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    matched = [n for n in linear if pattern.fullmatch(n)]
    assert len(matched) == 7 * 28 and all(".language_model." in n for n in matched)
    assert not any(pattern.fullmatch(n) for n in linear if ".visual." in f".{n}.")
