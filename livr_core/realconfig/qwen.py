"""Real-configuration Qwen2.5-VL (3B, 7B) and Qwen3-VL (4B) checkpoint directories, offline.

Owns `QWEN_CHECKPOINTS`, `write_qwen_checkpoint`, `reduced_config`, `published_state_dict` and
the reduced widths of the CI variant (`CI_WIDTHS`). A directory holds the published file set:

| file | content |
|---|---|
| `config.json` | the published one (`data/<family>/config*.json`, legacy keys and all) with depth reduced and, for the CI variant, widths reduced |
| `tokenizer_config.json`, `chat_template.json`, `preprocessor_config.json`, `generation_config.json` (Qwen3-VL: also `video_preprocessor_config.json`) | copied byte for byte from `data/<family>/` |
| `vocab.json`, `merges.txt` | the real Qwen vocabulary (`livr_core.realconfig.vocab`) |
| `tokenizer.json` | the fast tokenizer built from those files and the added tokens, as the real checkpoints ship it (transformers reads it first when present) |
| `model-0000{1,2}-of-00002.safetensors` + `model.safetensors.index.json` | random bf16 weights (the published dtype) under the published key names, in two shards like the 3B/4B downloads |
| `livr_realconfig.json` | what was written (backbone, widths, layers, seed): ours, not part of a real download |

Depth: `layers` text decoder layers and as many vision blocks; the vision tower's full-attention
blocks (Qwen2.5-VL) become its last block, and Qwen3-VL's deepstack taps its last (up to) three
blocks, so every mechanism of the published architecture is still present.

Widths: "real" keeps every published width (what `bench/gpu_check.sh` runs); "ci" keeps the
published head dimensions (text 128, so the published M-RoPE sections still fill half a head;
vision 80 / 64) and grouped-query attention, with 2 query heads on 1 KV head and narrow MLPs. The
151,936-row embedding (tied like the published 3B/4B, untied for the 7B) is then the bulk of a
CI checkpoint: 39M parameters, 78 MB in bf16.

Key names: transformers 5 renames Qwen2.5-VL's published `model.*` / `visual.*` to
`model.language_model.*` / `model.visual.*` when loading; the writer maps them back so the
loading path of a real download (its conversion mapping) is what the tests exercise.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import save_file

from livr_core.realconfig.vocab import qwen_vocab_files

DATA = Path(__file__).parent / "data"
Widths = Literal["ci", "real"]
DEFAULT_LAYERS = 2  # text layers and vision blocks: enough for layer-to-layer effects, seconds on CPU
DEFAULT_SEED = 0  # the random weights come from this seed
SHARDS = 2  # the 3B and 4B downloads come in two shards; so do ours, so the index path is run
INFO_FILE = "livr_realconfig.json"


@dataclass(frozen=True)
class QwenCheckpoint:
    """One published checkpoint: its configuration folder, config file and model class."""

    family: Literal["qwen2.5-vl", "qwen3-vl"]
    config_file: str
    model_class: str  # transformers class name
    copied: tuple[str, ...]  # files copied unchanged from data/<family>/
    # (published prefix, transformers 5 prefix) of the state-dict keys, most specific first
    key_prefixes: tuple[tuple[str, str], ...]


_QWEN25_FILES = (
    "tokenizer_config.json", "chat_template.json", "preprocessor_config.json",
    "generation_config.json",
)
_QWEN25_KEYS = (("visual.", "model.visual."), ("model.", "model.language_model."))

QWEN_CHECKPOINTS: dict[str, QwenCheckpoint] = {
    "qwen2.5-vl-3b": QwenCheckpoint(
        "qwen2.5-vl", "config-3b.json", "Qwen2_5_VLForConditionalGeneration", _QWEN25_FILES,
        _QWEN25_KEYS,
    ),
    "qwen2.5-vl-7b": QwenCheckpoint(
        "qwen2.5-vl", "config-7b.json", "Qwen2_5_VLForConditionalGeneration", _QWEN25_FILES,
        _QWEN25_KEYS,
    ),
    "qwen3-vl-4b": QwenCheckpoint(
        "qwen3-vl", "config.json", "Qwen3VLForConditionalGeneration",
        (*_QWEN25_FILES, "video_preprocessor_config.json"),
        (),  # Qwen3-VL was published with transformers' current names
    ),
}


@dataclass(frozen=True)
class CiWidths:
    """The CI variant's widths: published head sizes, few heads, narrow MLPs."""

    heads: int = 2  # query heads, text and vision
    kv_heads: int = 1  # grouped-query attention kept (2 query heads per KV head)
    text_head_dim: int = 128  # published (both families); M-RoPE sections sum to half of it
    text_mlp: int = 512  # 2x hidden
    vision_mlp_factor: int = 2


CI_WIDTHS = CiWidths()


def _vision_head_dim(vision: dict[str, Any]) -> int:
    return vision["hidden_size"] // vision["num_heads"]


def reduced_config(
    name: str, widths: Widths = "ci", layers: int | None = DEFAULT_LAYERS
) -> dict[str, Any]:
    """The published config.json of `name` with depth (and, for "ci", widths) reduced;
    `layers=None` keeps the published depth."""
    spec = QWEN_CHECKPOINTS[name]
    if widths not in ("ci", "real"):
        raise ValueError(f"widths must be 'ci' or 'real', not {widths!r}")
    if layers is not None and layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    config = json.loads((DATA / spec.family / spec.config_file).read_text(encoding="utf-8"))
    # Qwen2.5-VL's published config is flat (text fields at the top); Qwen3-VL nests text_config.
    text = config.get("text_config", config)
    vision = config["vision_config"]
    if layers is not None:
        text["num_hidden_layers"] = layers
        vision["depth"] = layers
        if "fullatt_block_indexes" in vision:
            vision["fullatt_block_indexes"] = [layers - 1]
        if "deepstack_visual_indexes" in vision:
            vision["deepstack_visual_indexes"] = list(range(layers))[-3:]
    if widths == "ci":
        w = CI_WIDTHS
        hidden = w.heads * w.text_head_dim
        text.update(
            hidden_size=hidden, intermediate_size=w.text_mlp, num_attention_heads=w.heads,
            num_key_value_heads=w.kv_heads,
        )
        if "head_dim" in text:
            text["head_dim"] = w.text_head_dim
        vision_hidden = w.heads * _vision_head_dim(vision)
        vision.update(
            hidden_size=vision_hidden, num_heads=w.heads, out_hidden_size=hidden,
            intermediate_size=w.vision_mlp_factor * vision_hidden,
        )
    return config


def published_state_dict(name: str, state: dict[str, torch.Tensor], tied: bool) -> dict[str, torch.Tensor]:
    """`state` (transformers 5 key names) under the published key names; a tied head is dropped
    (the published tied checkpoints do not store it)."""
    prefixes = QWEN_CHECKPOINTS[name].key_prefixes
    out = {}
    for key, tensor in state.items():
        if tied and key == "lm_head.weight":
            continue
        for published, current in prefixes:
            if key.startswith(current):
                key = published + key[len(current):]
                break
        out[key] = tensor.contiguous()
    return out


def _random_model(spec: QwenCheckpoint, out: Path, seed: int) -> torch.nn.Module:
    import transformers

    config = transformers.AutoConfig.from_pretrained(out)  # parses the written file, as users do
    model_class = getattr(transformers, spec.model_class)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_class._from_config(config, dtype=torch.bfloat16)


def _save_shards(state: dict[str, torch.Tensor], out: Path) -> None:
    """Two safetensors shards split at half the bytes, and their index, as published."""
    total = sum(t.numel() * t.element_size() for t in state.values())
    names = [f"model-{i:05d}-of-{SHARDS:05d}.safetensors" for i in range(1, SHARDS + 1)]
    shards: list[dict[str, torch.Tensor]] = [{} for _ in names]
    seen = 0
    for key in sorted(state):
        tensor = state[key]
        shard = min(SHARDS - 1, math.floor(SHARDS * seen / total))
        shards[shard][key] = tensor
        seen += tensor.numel() * tensor.element_size()
    weight_map = {}
    for name, shard in zip(names, shards):
        save_file(shard, str(out / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def _write_tokenizer_json(out: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out)  # vocab.json + merges.txt + tokenizer_config
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))


def write_qwen_checkpoint(
    name: str,
    out: str | Path,
    *,
    widths: Widths = "ci",
    layers: int | None = DEFAULT_LAYERS,
    seed: int = DEFAULT_SEED,
    weights: bool = True,
) -> Path:
    """Write the real-configuration directory of `name` to `out` (created; files replaced).

    `weights=False` writes everything but the safetensors (configuration, tokenizer, processor):
    enough for a benchmark that builds the model on its own device from `config.json`."""
    spec = QWEN_CHECKPOINTS[name]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = reduced_config(name, widths, layers)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    for file in spec.copied:
        shutil.copyfile(DATA / spec.family / file, out / file)
    for file in qwen_vocab_files():  # converted once into the cache, then copied
        shutil.copyfile(file, out / file.name)
    _write_tokenizer_json(out)
    if weights:
        model = _random_model(spec, out, seed)
        tied = bool(config.get("tie_word_embeddings", False))
        _save_shards(published_state_dict(name, model.state_dict(), tied), out)
    info = {"backbone": name, "widths": widths, "layers": layers, "seed": seed,
            "weights": "random" if weights else "none",
            "source_commit": (DATA / spec.family / "COMMIT").read_text().strip()}
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out
