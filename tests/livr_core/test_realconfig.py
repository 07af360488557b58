"""Real-configuration checkpoints (`livr_core.realconfig`) and the real loading path on them.

Each directory is what a user downloads (published config, tokenizer, chat template, processor
and generation configs, the real vocabulary, sharded safetensors under the published key names)
with 2 layers, reduced widths and random bf16 weights; it is loaded exactly as a user's local copy
is: `load_backbone(name, LoadOptions(source=DIR))`. Facts checked against the published
checkpoints: parameter counts at published sizes, key names, token ids, the default system
prompt of Qwen2.5-VL's template, the image-token counts of the published pixel budgets, the end
tokens of `generation_config.json`, and the first free embedding rows.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from pathlib import Path

import pytest
import torch
import transformers
from PIL import Image
from safetensors import safe_open

from livr_core.backbones import load_backbone
from livr_core.backbones.qwen import load_pil_processor
from livr_core.configs import GenerationConfig, LatentConfig, LoadOptions, MaskVariant
from livr_core.encoding import Encoder, Sample
from livr_core.inference import generate, stop_token_ids
from livr_core.latents import add_latent_tokens
from livr_core.lora import apply_finetuning, param_groups
from livr_core.model_inputs import forward_inputs
from livr_core.realconfig.checkpoints import WRITERS, write_checkpoint
from livr_core.realconfig.qwen import DATA, QWEN_CHECKPOINTS, reduced_config
from livr_core.token_types import TokenType

BACKBONES = tuple(QWEN_CHECKPOINTS)  # qwen2.5-vl-3b, qwen2.5-vl-7b, qwen3-vl-4b
ENDOFTEXT, IM_END = 151643, 151645  # published ids
# Parameter counts the Hub shows for the published checkpoints (billions, 2 decimals).
PUBLISHED_BILLIONS = {"qwen2.5-vl-3b": 3.75, "qwen2.5-vl-7b": 8.29, "qwen3-vl-4b": 4.44}
# Key names of the published safetensors (as listed by public loaders of these checkpoints).
PUBLISHED_KEYS = {
    "qwen2.5-vl": ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                   "model.norm.weight", "visual.patch_embed.proj.weight",
                   "visual.blocks.0.attn.qkv.weight", "visual.merger.mlp.2.weight"),
    "qwen3-vl": ("model.language_model.embed_tokens.weight",
                 "model.language_model.layers.0.self_attn.q_norm.weight",
                 "model.visual.patch_embed.proj.weight", "model.visual.pos_embed.weight",
                 "model.visual.merger.linear_fc2.weight",
                 "model.visual.deepstack_merger_list.0.norm.weight"),
}
FIRST_FREE_ID = {"qwen2.5-vl": 151665, "qwen3-vl": 151669}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _family(name: str) -> str:
    return QWEN_CHECKPOINTS[name].family


def _stored_keys(directory: Path) -> dict[str, tuple[int, ...]]:
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    keys = {}
    for shard in sorted(set(index["weight_map"].values())):
        with safe_open(directory / shard, "pt") as f:
            assert f.metadata() == {"format": "pt"}
            for key in f.keys():  # noqa: SIM118 - a safetensors handle, not a dict
                assert index["weight_map"][key] == shard
                keys[key] = tuple(f.get_slice(key).get_shape())
    assert set(keys) == set(index["weight_map"])
    return keys


@pytest.mark.parametrize("name", BACKBONES)
def test_real_widths_give_the_published_parameter_count(name: str, tmp_path: Path) -> None:
    config = reduced_config(name, "real", layers=None)
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = transformers.AutoConfig.from_pretrained(tmp_path)
    with torch.device("meta"):
        model = getattr(transformers, QWEN_CHECKPOINTS[name].model_class)(loaded)
    count = sum(p.numel() for p in model.parameters())
    assert round(count / 1e9, 2) == PUBLISHED_BILLIONS[name]


@pytest.mark.parametrize("widths", ["ci", "real"])
@pytest.mark.parametrize("name", BACKBONES)
def test_reduced_config_changes_only_depth_and_widths(name: str, widths: str) -> None:
    spec = QWEN_CHECKPOINTS[name]
    published = json.loads((DATA / spec.family / spec.config_file).read_text())
    reduced = reduced_config(name, widths)  # type: ignore[arg-type]

    def flat(config: dict) -> dict:
        return {f"{k}.{kk}" if isinstance(v, dict) else k: vv
                for k, v in config.items() for kk, vv in (v.items() if isinstance(v, dict)
                                                          else [(None, v)])}

    before, after = flat(published), flat(reduced)
    assert before.keys() == after.keys()
    changed = {k for k in before if before[k] != after[k]}
    text = "text_config." if "text_config" in published else ""
    depth = {f"{text}num_hidden_layers", "vision_config.depth",
             "vision_config.fullatt_block_indexes" if spec.family == "qwen2.5-vl"
             else "vision_config.deepstack_visual_indexes"}
    assert changed == depth if widths == "real" else changed > depth
    if widths == "ci":
        kept = {f"{text}vocab_size", f"{text}rope_scaling", "vision_config.patch_size",
                "vision_config.spatial_merge_size", "image_token_id"}
        assert not kept & changed  # vocabulary, M-RoPE sections and image geometry are real


def test_registry_writers_are_named_like_the_backbones() -> None:
    from livr_core.backbones import BACKBONES as REGISTERED

    assert set(BACKBONES) <= set(WRITERS) <= set(REGISTERED)
    with pytest.raises(KeyError, match="known: "):
        write_checkpoint("tiny-qwen2.5-vl", "/nonexistent")


@pytest.mark.parametrize("name", BACKBONES)
def test_directory_has_the_published_files_and_key_names(name: str, real_checkpoint) -> None:
    directory = real_checkpoint(name)
    spec = QWEN_CHECKPOINTS[name]
    for file in spec.copied:  # byte for byte
        assert (directory / file).read_bytes() == (DATA / spec.family / file).read_bytes()
    for file in ("config.json", "vocab.json", "merges.txt", "tokenizer.json"):
        assert (directory / file).is_file()
    keys = _stored_keys(directory)
    assert set(PUBLISHED_KEYS[spec.family]) <= set(keys)
    if spec.family == "qwen2.5-vl":
        assert not any(k.startswith(("model.language_model.", "model.visual.")) for k in keys)
    tied = json.loads((directory / "config.json").read_text())["tie_word_embeddings"]
    assert ("lm_head.weight" in keys) is (not tied)  # 3B/4B tied, 7B not: as published
    assert keys[PUBLISHED_KEYS[spec.family][0]] == (151936 if name != "qwen2.5-vl-7b" else 152064,
                                                   256)


@pytest.mark.parametrize("name", BACKBONES)
def test_loads_every_weight_through_the_real_loader(name: str, real_checkpoint) -> None:
    directory = real_checkpoint(name)
    model_class = getattr(transformers, QWEN_CHECKPOINTS[name].model_class)
    _, info = model_class.from_pretrained(directory, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    backbone = load_backbone(name, LoadOptions(source=str(directory)))
    assert backbone.model.dtype == torch.bfloat16  # the published dtype, loaded with "auto"
    embed = PUBLISHED_KEYS[_family(name)][0]
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    with safe_open(directory / index["weight_map"][embed], "pt") as f:
        stored = f.get_tensor(embed)
    assert torch.equal(backbone.model.get_input_embeddings().weight, stored)
    assert type(backbone.processor.image_processor).__name__ == "Qwen2VLImageProcessorPil"


@pytest.mark.parametrize("name", ["qwen2.5-vl-3b", "qwen3-vl-4b"])
def test_tokenizer_is_the_published_one_with_or_without_tokenizer_json(
    name: str, real_checkpoint, tmp_path: Path
) -> None:
    directory = real_checkpoint(name)
    tokenizer = load_backbone(name, LoadOptions(source=str(directory))).tokenizer
    assert tokenizer("Hello world")["input_ids"] == [9707, 1879]
    assert len(tokenizer) == FIRST_FREE_ID[_family(name)]
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>", "<|image_pad|>"])
    assert ids == [ENDOFTEXT, IM_END, 151655]
    # The slow path (vocab.json + merges.txt only) must tokenize like tokenizer.json does.
    bare = tmp_path / "bare"
    shutil.copytree(directory, bare, ignore=shutil.ignore_patterns("tokenizer.json", "*.safetensors"))
    slow = transformers.AutoTokenizer.from_pretrained(bare)
    text = "<|im_start|>user\nWhich point is closer?  (A) 中文<|im_end|>\n"
    assert slow(text)["input_ids"] == tokenizer(text)["input_ids"]


def _image(color: tuple[int, int, int], size: tuple[int, int] = (112, 112)) -> Image.Image:
    return Image.new("RGB", size, color)


@pytest.mark.parametrize("name", ["qwen2.5-vl-3b", "qwen3-vl-4b"])
def test_chat_encoding_and_the_bottleneck_on_the_real_architecture(
    name: str, real_checkpoint
) -> None:
    """Encoding is the checkpoint's own template + processor, latents take free rows; answer
    logits under the stage-1 mask without latents cannot depend on the image (two images,
    bit-identical logits), while the causal mask and the latents (the controls) carry it."""
    backbone = load_backbone(name, LoadOptions(source=str(real_checkpoint(name))))
    rows = backbone.model.get_input_embeddings().weight.shape[0]
    taken = set(backbone.tokenizer.added_tokens_decoder) | set(backbone.tokenizer.all_special_ids)
    latents = add_latent_tokens(backbone, LatentConfig(k=4))
    first = FIRST_FREE_ID[_family(name)]
    assert latents.ids == tuple(range(first, first + 4))  # unused rows past the tokenizer
    assert backbone.model.get_input_embeddings().weight.shape[0] == rows  # no resize
    assert not set(latents.ids) & taken
    encoder = Encoder(backbone, latents)
    sample = Sample([_image((200, 30, 30))], "Which is red? (A) x (B) y", "(A)", "s")
    encoded = encoder.encode(sample)
    rendered = backbone.processor.apply_chat_template(
        encoder.messages(sample), tokenize=False, add_generation_prompt=True)
    system = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    assert rendered.startswith(system) is (name == "qwen2.5-vl-3b")  # the real template's default
    assert rendered.endswith(latents.sequence + "<|im_end|>\n<|im_start|>assistant\n")
    expected = backbone.processor(text=[rendered], images=[sample.images[0]], return_tensors="pt",
                                  add_special_tokens=False)["input_ids"][0]
    assert torch.equal(encoded.input_ids[: encoded.prompt_length], expected)
    grid = encoded.vision["image_grid_thw"][0]
    assert int((encoded.token_types == TokenType.IMAGE).sum()) == int(grid.prod()) // 4
    answer = encoded.input_ids[encoded.prompt_length:].tolist()
    assert answer == [*backbone.tokenizer("(A)")["input_ids"], IM_END]

    samples = [sample, Sample([_image((30, 30, 200))], sample.prompt, "(A)", "t")]

    def answer_logits(enc: Encoder, variant: MaskVariant) -> list[torch.Tensor]:
        out = []
        for one in samples:
            batch = enc([one])
            with torch.no_grad():
                logits = backbone.model(**forward_inputs(backbone.model, backbone.adapter, batch,
                                                         variant)).logits[0]
            out.append(logits[batch.token_types[0] == TokenType.ANSWER])
        return out

    first_logits, second_logits = answer_logits(encoder.without_latents(), MaskVariant.BOTTLENECK)
    assert torch.equal(first_logits, second_logits)
    first_logits, second_logits = answer_logits(encoder.without_latents(), MaskVariant.CAUSAL)
    assert not torch.equal(first_logits, second_logits)
    first_logits, second_logits = answer_logits(encoder, MaskVariant.BOTTLENECK)
    assert not torch.equal(first_logits, second_logits)


@pytest.mark.parametrize(
    ("name", "default_tokens", "budget", "budget_tokens"),
    # 480x640: Qwen2.5-VL (28 px per token) 17x23 at the published 12.8M-pixel cap; Qwen3-VL
    # (32 px) 15x20. A 100k-pixel budget shrinks them to 9x13 and 8x11 (smart_resize).
    [("qwen2.5-vl-3b", 391, 100_000, 117), ("qwen3-vl-4b", 300, 100_000, 88)],
)
def test_pixel_budget_changes_the_number_of_image_tokens(
    name: str, default_tokens: int, budget: int, budget_tokens: int, real_checkpoint
) -> None:
    directory = str(real_checkpoint(name))
    image = _image((10, 200, 10), (640, 480))

    def tokens(max_pixels: int | None) -> int:
        processor = load_pil_processor(directory, LoadOptions(max_pixels=max_pixels))
        text = processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "?"}]}],
            tokenize=False, add_generation_prompt=True)
        ids = processor(text=[text], images=[image], return_tensors="pt")["input_ids"]
        return int((ids == 151655).sum())

    assert tokens(None) == default_tokens
    assert tokens(budget) == budget_tokens
    assert budget_tokens * (28 if "2.5" in name else 32) ** 2 <= budget


@pytest.mark.parametrize("name", ["qwen2.5-vl-3b", "qwen3-vl-4b"])
def test_generation_stops_on_every_end_token_then_one_training_step(
    name: str, real_checkpoint, caplog: pytest.LogCaptureFixture
) -> None:
    backbone = load_backbone(name, LoadOptions(source=str(real_checkpoint(name))))
    encoder = Encoder(backbone, add_latent_tokens(backbone, LatentConfig(k=4)))
    assert stop_token_ids(backbone.model, encoder) == {ENDOFTEXT, IM_END}  # generation_config
    sample = Sample([_image((200, 30, 30))], "Which is red? (A) x (B) y", None, "s")
    config = GenerationConfig(max_new_tokens=3, return_logits=True)
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING):
        warnings.simplefilter("error", FutureWarning)
        free = generate(backbone.model, backbone.adapter, encoder, [sample], config)[0]
        for end in (ENDOFTEXT, IM_END):
            def force(module, args, output, end=end):
                output.logits[..., end] = 1e4
                return output

            handle = backbone.model.register_forward_hook(force)
            try:
                forced = generate(backbone.model, backbone.adapter, encoder, [sample], config)[0]
            finally:
                handle.remove()
            assert forced.token_ids == [] and forced.text == ""
            assert forced.logits.shape[0] == 1  # stopped after one step
    assert len(free.token_ids) == 3 and free.logits.shape == (3, 151936)
    assert not [r for r in caplog.records if "deprecated" in r.getMessage()]

    # One LIVR stage-1 step on the same model: only LoRA and the latent rows move.
    latents = encoder.latents
    embedding = backbone.model.get_input_embeddings().weight.detach().clone()
    model = apply_finetuning(backbone, latents)
    optimizer = torch.optim.AdamW(param_groups(model, 0.01), lr=1e-2)
    batch = encoder([Sample(sample.images, sample.prompt, "(A)", "s")])
    loss = model(**forward_inputs(model, backbone.adapter, batch, MaskVariant.BOTTLENECK),
                 labels=batch.labels, use_cache=False).loss
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    with torch.no_grad():  # the embedding as the model now sees it (base rows + latent delta)
        weight = model.get_input_embeddings()(torch.arange(embedding.shape[0]))
    ids = list(latents.ids)
    others = [i for i in range(embedding.shape[0]) if i not in latents.ids]
    assert not torch.equal(weight[ids], embedding[ids])
    assert torch.equal(weight[others], embedding[others])


@pytest.mark.real_widths  # opt-in: `python -m pytest -m real_widths` (1-2 GB per checkpoint)
@pytest.mark.parametrize("name", BACKBONES)
def test_real_width_checkpoints_load_and_keep_the_bottleneck_exact(
    name: str, tmp_path: Path
) -> None:
    """The slow variant: published widths (2 layers), the same real path as the CI variant."""
    directory = write_checkpoint(name, tmp_path / name, widths="real")
    backbone = load_backbone(name, LoadOptions(source=str(directory)))
    text = backbone.model.config.get_text_config()
    published = reduced_config(name, "real")
    expected = published.get("text_config", published)["hidden_size"]
    assert text.hidden_size == expected and text.num_hidden_layers == 2
    encoder = Encoder(backbone, add_latent_tokens(backbone, LatentConfig(k=4))).without_latents()
    logits = []
    for color in ((200, 30, 30), (30, 30, 200)):
        batch = encoder([Sample([_image(color)], "Which is red? (A) x (B) y", "(A)", "s")])
        with torch.no_grad():
            out = backbone.model(**forward_inputs(backbone.model, backbone.adapter, batch,
                                                  MaskVariant.BOTTLENECK)).logits[0]
        logits.append(out[batch.token_types[0] == TokenType.ANSWER])
    assert torch.equal(*logits)
