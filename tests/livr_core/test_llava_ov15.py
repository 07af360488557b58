"""LLaVA-OneVision-1.5, native: a checkpoint laid out like LLaVA-OneVision-1.5-4B-Instruct (its
config.json with auto_map, the published weight names, its Qwen2.5-VL processor files, the real
Qwen vocabulary; 2 layers, small widths) through load, encode, masks, a train step, generation
and the attention read-outs, and against logits recorded from the public remote code.

What the expected names and values rest on is said where they are used; the checkpoint comes
from `livr_core.realconfig.llava_ov15` (whose data folder's SOURCES.md gives the provenance).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is written locally; never download

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen2_5_VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from livr_core.attention import eager_attention, mean_attention
from livr_core.backbones import load_backbone
from livr_core.backbones.base import Backbone
from livr_core.backbones.llava_ov import RemoteCodeNotAllowed
from livr_core.backbones.llava_ov_model import (
    LlavaOnevision15Config,
    LlavaOnevision15ForConditionalGeneration,
)
from livr_core.configs import (
    FinetuneConfig,
    GenerationConfig,
    LatentConfig,
    LoadOptions,
    MaskRules,
    MaskVariant,
)
from livr_core.encoding import Encoder, Sample
from livr_core.inference import generate
from livr_core.latents import add_latent_tokens
from livr_core.lora import apply_finetuning
from livr_core.model_inputs import forward_inputs
from livr_core.realconfig.llava_ov15 import checkpoint_config, write_llava_ov15_checkpoint
from livr_core.token_types import TokenType
from tests.livr_core.samples import K, random_image, two_image_sample

NAME = "llava-onevision-1.5-4b"
GOLDEN = Path(__file__).parent / "golden" / "llava_ov15_reference_logits.json"
SEALED = MaskRules(text_from_image=True, answer_from_image=True, latent_from_image=True)
IMAGE_PAD, VISION_START, VISION_END = 151655, 151652, 151653  # the Qwen2 tokenizer's ids


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ov15") / "LLaVA-OneVision-1.5-4B-Instruct"
    return write_llava_ov15_checkpoint(out)


def _load(source: Path, **options) -> Backbone:
    return load_backbone(NAME, LoadOptions(source=str(source), dtype=torch.float32, **options))


def _prepared(checkpoint: Path) -> tuple[Backbone, Encoder]:
    backbone = _load(checkpoint)
    return backbone, Encoder(backbone, add_latent_tokens(backbone, LatentConfig(k=K)))


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(directory.glob("*.safetensors")):
        tensors.update(load_file(shard))
    return tensors


def reference_inputs(case: str) -> dict[str, torch.Tensor]:
    """Fixed synthetic inputs (no processor): a few text ids around one or two 4x6 / 6x4 images."""
    grids = [[1, 4, 6]] if case == "one_image" else [[1, 4, 6], [1, 6, 4]]
    generator = torch.Generator().manual_seed(0)
    patches = sum(t * h * w for t, h, w in grids)
    ids = [151644, 872, 198]  # <|im_start|>user\n
    for _, h, w in grids:
        ids += [VISION_START, *[IMAGE_PAD] * (h * w // 4), VISION_END]
    ids += [9707, 1879, 151645, 198, 151644, 77091, 198]  # Hello world<|im_end|>\n...assistant\n
    return {
        "input_ids": torch.tensor([ids]),
        "pixel_values": torch.randn(patches, 3 * 14 * 14, generator=generator),
        "image_grid_thw": torch.tensor(grids),
    }


def test_checkpoint_has_the_published_files_names_and_shapes(checkpoint: Path) -> None:
    assert sorted(p.name for p in checkpoint.iterdir()) == [
        "chat_template.json", "config.json", "merges.txt", "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors", "model.safetensors.index.json",
        "preprocessor_config.json", "tokenizer_config.json", "vocab.json",
    ]
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["model_type"] == "llavaonevision1_5"
    assert config["auto_map"]["AutoModelForCausalLM"] == (
        "modeling_llavaonevision1_5.LLaVAOneVision1_5_ForConditionalGeneration")
    assert config["text_config"]["model_type"] == "LLaVAOneVision1_5_text"
    assert config["vision_config"]["model_type"] == "rice_vit"
    weights = _weights(checkpoint)
    index = json.loads((checkpoint / "model.safetensors.index.json").read_text())["weight_map"]
    assert set(index) == set(weights)
    assert {t.dtype for t in weights.values()} == {torch.bfloat16}
    # Names from the publishers' Megatron -> Hugging Face converter maps
    # (tools/convert_checkpoint/config/llava-ov-1.5-4b/{vision-patch,vision-model,adapter,qwen3}.json)
    block = ["norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"]
    layer = ["input_layernorm.weight", "post_attention_layernorm.weight",
             "self_attn.q_norm.weight", "self_attn.k_norm.weight",
             *[f"self_attn.{p}_proj.weight" for p in "qkvo"],
             *[f"mlp.{p}_proj.weight" for p in ("gate", "up", "down")]]
    expected = {
        "visual.patch_embed.proj.weight", "visual.class_embedding", "visual.class_pos_emb",
        "visual.pre_layernorm.weight", "visual.pre_layernorm.bias",
        *[f"visual.merger.{m}.{p}" for m in ("ln_q", "mlp.0", "mlp.2") for p in ("weight", "bias")],
        *[f"visual.blocks.{i}.{m}.{p}" for i in range(2) for m in block for p in ("weight", "bias")],
        "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
        *[f"model.layers.{i}.{name}" for i in range(2) for name in layer],
    }
    assert set(weights) == expected
    assert weights["model.embed_tokens.weight"].shape == (151936, 64)  # the real vocabulary rows
    assert weights["visual.patch_embed.proj.weight"].shape == (32, 3, 14, 14)  # 2D patches
    assert weights["visual.class_pos_emb"].shape == (1, 8)  # head_dim / 2 rotary angles
    assert weights["visual.merger.mlp.0.weight"].shape == (4 * 32, 4 * 32)  # 2x2 merge
    assert not torch.equal(weights["lm_head.weight"], weights["model.embed_tokens.weight"])


def test_real_widths_build_the_published_4b_shapes() -> None:
    published = json.loads(
        (Path(__file__).parents[2] / "livr_core/realconfig/data/llava-onevision-1.5/config.json")
        .read_text())
    assert checkpoint_config("real", layers=36) == published
    with torch.device("meta"):
        model = LlavaOnevision15ForConditionalGeneration(
            LlavaOnevision15Config(**checkpoint_config("real", layers=1)))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["model.language_model.layers.0.self_attn.q_proj.weight"] == (4096, 2560)
    assert shapes["model.language_model.layers.0.self_attn.k_proj.weight"] == (1024, 2560)
    assert shapes["model.visual.blocks.0.attn.qkv.weight"] == (3072, 1024)
    assert shapes["model.visual.class_pos_emb"] == (1, 32)
    assert shapes["model.visual.merger.mlp.2.weight"] == (2560, 4096)
    assert shapes["lm_head.weight"] == (151936, 2560)
    assert not model.config.tie_word_embeddings


def test_writing_is_deterministic_from_the_seed(tmp_path: Path) -> None:
    first = write_llava_ov15_checkpoint(tmp_path / "a", layers=1)
    second = write_llava_ov15_checkpoint(tmp_path / "b", layers=1)
    other = write_llava_ov15_checkpoint(tmp_path / "c", layers=1, seed=1)
    for path in first.iterdir():
        assert path.read_bytes() == (second / path.name).read_bytes(), path.name
    assert (first / "model-00002-of-00002.safetensors").read_bytes() != (
        other / "model-00002-of-00002.safetensors").read_bytes()


def test_every_published_weight_lands_on_its_native_module(checkpoint: Path) -> None:
    model = _load(checkpoint).model
    native = model.state_dict()
    published = _weights(checkpoint)
    assert len(native) == len(published)
    for name, tensor in published.items():
        target = ("model.language_model." + name[len("model."):] if name.startswith("model.")
                  else "model." + name if name.startswith("visual.") else name)
        assert torch.equal(native[target], tensor.float()), name
    # Non-persistent rotary buffers are rebuilt after loading (the remote code left them empty)
    vision = model.model.visual.rotary_pos_emb.inv_freq
    assert torch.equal(vision, 1.0 / 10000.0 ** (torch.arange(0, 8, 2).float() / 8))
    text = model.model.language_model.rotary_emb.inv_freq
    assert torch.allclose(text, 1.0 / 5e6 ** (torch.arange(0, 16, 2).float() / 16))
    assert model.config.get_text_config()._attn_implementation == "sdpa"


def _rewrite_shard(directory: Path, rename: dict[str, str], drop: str | None = None) -> None:
    shard = directory / "model-00002-of-00002.safetensors"
    tensors = {rename.get(k, k): v for k, v in load_file(shard).items() if k != drop}
    save_file(tensors, shard, metadata={"format": "pt"})
    index_path = directory / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"] = {rename.get(k, k): v for k, v in index["weight_map"].items() if k != drop}
    index_path.write_text(json.dumps(index))


def test_unmapped_or_missing_weights_are_errors_naming_them(checkpoint: Path, tmp_path: Path):
    renamed = shutil.copytree(checkpoint, tmp_path / "renamed")
    _rewrite_shard(renamed, {"model.norm.weight": "model.final_norm.weight"})
    with pytest.raises(ValueError, match="do not match") as error:
        _load(renamed)
    assert "model.final_norm.weight" in str(error.value)  # left unused
    assert "model.language_model.norm.weight" in str(error.value)  # left unloaded
    dropped = shutil.copytree(checkpoint, tmp_path / "dropped")
    _rewrite_shard(dropped, {}, drop="lm_head.weight")
    with pytest.raises(ValueError, match="lm_head.weight"):
        _load(dropped)


def test_the_checkpoints_own_code_is_never_run(checkpoint: Path, tmp_path: Path) -> None:
    shipped = shutil.copytree(checkpoint, tmp_path / "with-code")
    marker = tmp_path / "executed"
    for name in ("configuration_llavaonevision1_5.py", "modeling_llavaonevision1_5.py"):
        (shipped / name).write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    backbone = _load(shipped)  # no trust_remote_code
    assert type(backbone.model) is LlavaOnevision15ForConditionalGeneration
    assert not marker.exists()


def test_an_unknown_model_type_needs_the_remote_code_opt_in(checkpoint: Path, tmp_path: Path):
    other = shutil.copytree(checkpoint, tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    config["model_type"] = "llavaonevision1_5_moe"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(RemoteCodeNotAllowed, match="llavaonevision1_5_moe.*trust_remote_code"):
        _load(other)


def test_processor_is_the_published_qwen_one(checkpoint: Path) -> None:
    backbone = _load(checkpoint)
    processor, tokenizer = backbone.processor, backbone.tokenizer
    assert isinstance(processor, Qwen2_5_VLProcessor)
    assert isinstance(processor.image_processor, Qwen2VLImageProcessorPil)
    assert processor.image_processor.temporal_patch_size == 1
    assert tokenizer("Hello world")["input_ids"] == [9707, 1879]  # the published encoding
    assert tokenizer.convert_tokens_to_ids("<|image_pad|>") == backbone.model.config.image_token_id
    rendered = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}],
        tokenize=False, add_generation_prompt=True)
    assert rendered == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Hi"
                        "<|im_end|>\n<|im_start|>assistant\n")
    latents = add_latent_tokens(backbone, LatentConfig(k=K))
    assert latents.ids == tuple(range(151665, 151665 + K))  # the first unused ids
    assert backbone.model.get_input_embeddings().weight.shape[0] == 151936  # no resize


def test_each_image_becomes_one_token_per_2x2_patch_group(checkpoint: Path) -> None:
    backbone, encoder = _prepared(checkpoint)
    encoded = encoder.encode(two_image_sample(0))  # 84x56 and 56x56 images
    grids = encoded.vision["image_grid_thw"].tolist()
    assert grids == [[1, 4, 6], [1, 4, 4]]
    assert encoded.vision["pixel_values"].shape == (24 + 16, 3 * 14 * 14)
    types = encoded.token_types
    assert int((types == TokenType.IMAGE).sum()) == (24 + 16) // 4
    assert backbone.adapter.image_grids(backbone.model, encoded.vision) == [(2, 3), (2, 2)]
    with torch.no_grad():
        out = backbone.model(**forward_inputs(
            backbone.model, backbone.adapter, encoder.collate([encoded]), MaskVariant.BOTTLENECK))
    assert torch.isfinite(out.logits).all()


def test_the_bottleneck_is_bit_exact_within_one_batch(checkpoint: Path) -> None:
    backbone, encoder = _prepared(checkpoint)
    batch = encoder([two_image_sample(0), two_image_sample(10)])  # only the pixels differ

    def logits(mask):
        with torch.no_grad():
            inputs = forward_inputs(backbone.model, backbone.adapter, batch, mask)
            return backbone.model(**inputs).logits

    types = batch.token_types[0]
    answer = types == TokenType.ANSWER
    sealed = logits(SEALED)
    assert torch.equal(sealed[0, answer], sealed[1, answer])
    livr = logits(MaskVariant.BOTTLENECK)
    prompt = (types == TokenType.TEXT) & (torch.arange(len(types)) < int(
        (types == TokenType.LATENT).nonzero().min()))
    assert torch.equal(livr[0, prompt], livr[1, prompt])
    assert (livr[0, answer] - livr[1, answer]).abs().max() > 1e-6  # through the latents
    # The KV-cache path: no latents, bottleneck at test time, both prompts in one batch.
    config = GenerationConfig(max_new_tokens=3, mask=MaskVariant.BOTTLENECK,
                              remove_latents=True, return_logits=True)
    first, second = generate(backbone.model, backbone.adapter, encoder,
                             [two_image_sample(0), two_image_sample(10)], config)
    assert first.token_ids == second.token_ids
    assert np.array_equal(first.logits, second.logits)  # bit for bit (-inf latent rows included)


def test_cached_generation_equals_recomputation_and_batching(checkpoint: Path) -> None:
    backbone, encoder = _prepared(checkpoint)
    samples = [Sample([random_image(3, 112, 56)], "Count the dots.", None, "short"),
               two_image_sample(0, sample_id="long")]
    config = GenerationConfig(max_new_tokens=4, mask=MaskVariant.BOTTLENECK, return_logits=True)
    args = (backbone.model, backbone.adapter, encoder)
    cached = generate(*args, samples, config)
    recomputed = generate(*args, samples, GenerationConfig(
        max_new_tokens=4, mask=MaskVariant.BOTTLENECK, return_logits=True, use_cache=False))
    for c, r, sample in zip(cached, recomputed, samples, strict=True):
        alone = generate(*args, [sample], config)[0]
        assert c.token_ids == r.token_ids == alone.token_ids
        finite = np.isfinite(c.logits)
        for other in (r, alone):
            assert np.array_equal(finite, np.isfinite(other.logits))
            diff = np.abs(c.logits[finite] - other.logits[finite]).max()
            assert diff <= 1e-5, f"{c.id}: max diff {diff}"
        assert not set(c.token_ids) & set(encoder.latent_ids.tolist())


def test_transformers_generate_agrees_with_the_toolkits_greedy_decoding(checkpoint: Path):
    backbone = _load(checkpoint)
    image = random_image(3, 112, 56)
    processor = backbone.processor
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Count."}]}],
        tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[text], images=[image], return_tensors="pt")  # mm_token_type_ids too
    theirs = backbone.model.generate(**inputs, max_new_tokens=4, do_sample=False)
    ours = generate(backbone.model, backbone.adapter, Encoder(backbone),
                    [Sample([image], "Count.", None, "x")], GenerationConfig(max_new_tokens=4))
    assert theirs[0, inputs["input_ids"].shape[1]:].tolist()[: len(ours[0].token_ids)] == (
        ours[0].token_ids) and ours[0].token_ids


def test_a_lora_step_trains_only_lora_and_the_latent_rows(checkpoint: Path) -> None:
    backbone, encoder = _prepared(checkpoint)
    model = apply_finetuning(backbone, encoder.latents, FinetuneConfig())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "trainable_tokens" in n for n in trainable)
    adapted = {n.split(".lora_A")[0] for n in trainable if ".lora_A" in n}
    assert len(adapted) == 7 * 2 and all(".language_model.layers." in n for n in adapted)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = encoder([two_image_sample(0), two_image_sample(5, answer="(A)")])
    model.train()
    loss = model(**forward_inputs(model, backbone.adapter, batch, MaskVariant.BOTTLENECK),
                 labels=batch.labels, use_cache=False).loss
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable
    assert any("trainable_tokens" in n for n in changed)  # the latent rows learn


def test_attention_read_outs_switch_the_language_model_to_eager(checkpoint: Path) -> None:
    backbone, encoder = _prepared(checkpoint)
    batch = encoder([two_image_sample(0)])
    attention = mean_attention(backbone.model, backbone.adapter, batch, MaskVariant.BOTTLENECK)
    types = batch.token_types[0]
    rows = attention[0, types != TokenType.IMAGE]
    assert torch.allclose(rows.sum(-1), torch.ones(len(rows)), atol=1e-5)
    answer = attention[0, types == TokenType.ANSWER]
    assert answer[:, types == TokenType.IMAGE].abs().max() == 0  # the bottleneck, as weights
    assert answer[:, types == TokenType.LATENT].sum() > 0
    config = backbone.model.config
    assert config.get_text_config()._attn_implementation == "sdpa"  # restored afterwards
    with torch.no_grad():
        sdpa = backbone.model(**forward_inputs(
            backbone.model, backbone.adapter, batch, MaskVariant.BOTTLENECK)).logits
        with eager_attention(backbone.model):
            assert config.get_text_config()._attn_implementation == "eager"
            eager = backbone.model(**forward_inputs(
                backbone.model, backbone.adapter, batch, MaskVariant.BOTTLENECK)).logits
    assert (sdpa - eager).abs().max() <= 1e-5


@pytest.mark.parametrize("case", ["one_image", "two_images"])
def test_logits_equal_the_public_remote_code(checkpoint: Path, case: str) -> None:
    """Recorded from the public modeling code (see the JSON's `about`); eager was bit-equal."""
    reference = json.loads(GOLDEN.read_text())["cases"][case]
    backbone = _load(checkpoint, attn_implementation="eager")
    config = backbone.model.config.vision_config
    # The remote code drops each image's class token at the wrong row for every image after the
    # first; the native default keeps each image's own patches, as the training code does.
    for shift in (False, True):
        config.remote_code_feature_shift = shift
        with torch.no_grad():
            logits = backbone.model(**reference_inputs(case)).logits[0]
        diff = max((logits.logsumexp(-1) - torch.tensor(reference["logsumexp"])).abs().max(),
                   (logits[-1, :32] - torch.tensor(reference["last"])).abs().max()).item()
        if shift or case == "one_image":
            assert diff <= 1e-5, f"{case}, remote_code_feature_shift={shift}: max diff {diff}"
        else:
            assert diff > 1e-3, "the two images' features should differ from the remote code's"
