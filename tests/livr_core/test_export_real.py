"""Exports of real-configuration checkpoints (published config, tokenizer, processor and weight
names; 2 layers, random weights): the published weight names and architecture come back, the
processor saves (the real path used to break `save_pretrained`), and the toolkit's own loader
reads the export back to the same answers."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from livr_core.backbones import LoadOptions, load_backbone
from livr_core.encoding import Encoder
from livr_core.export import export_pretrained, read_livr_info, vllm_layout_problems
from livr_core.inference import GenerationConfig, generate
from livr_core.latents import LatentConfig, LatentTokens, add_latent_tokens
from livr_core.lora import FinetuneConfig, apply_finetuning
from tests.livr_core.samples import two_image_sample


def _weight_names(directory) -> set[str]:
    names: set[str] = set()
    for shard in directory.glob("*.safetensors"):
        with safe_open(str(shard), framework="pt") as handle:
            names.update(handle.keys())
    return names


@pytest.mark.parametrize("name", ["qwen2.5-vl-3b", "qwen3-vl-4b", "llava-onevision-1.5-4b"])
def test_real_configuration_exports_keep_the_published_layout(name, real_checkpoint, tmp_path):
    source = real_checkpoint(name)
    # float32: merging LoRA into bf16 weights rounds differently from applying it unmerged,
    # and random weights leave near-ties that such rounding flips.
    backbone = load_backbone(name, LoadOptions(source=str(source), dtype=torch.float32))
    latents = add_latent_tokens(backbone, LatentConfig(k=4))
    model = apply_finetuning(backbone, latents, FinetuneConfig())
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=generator).to(param.dtype) * 0.5)
    sample = two_image_sample(1, sample_id="s")
    ours = generate(model, backbone.adapter, Encoder(backbone, latents), [sample],
                    GenerationConfig(max_new_tokens=4, batch_size=1))[0].token_ids
    out = export_pretrained(model, backbone, latents, tmp_path / "export")
    published = json.loads((source / "config.json").read_text())
    exported = json.loads((out / "config.json").read_text())
    assert exported["architectures"] == published["architectures"]
    assert _weight_names(out) == _weight_names(source)  # the published names, nothing else
    assert vllm_layout_problems(out) == []
    # The toolkit reads its own export back (local source, no remote code) to the same answers.
    again = load_backbone(name, LoadOptions(source=str(out), dtype=torch.float32))
    info = read_livr_info(out)
    back = LatentTokens(tokens=tuple(info["latent_tokens"]), ids=tuple(info["latent_ids"]),
                        k=info["k"])
    theirs = generate(again.model, again.adapter, Encoder(again, back), [sample],
                      GenerationConfig(max_new_tokens=4, batch_size=1))[0].token_ids
    assert theirs == ours
