"""A LLaVA-OneVision-1.5-4B-Instruct checkpoint directory, offline: real files, reduced depth.

Owns `write_llava_ov15_checkpoint`. The directory holds what the published repository holds
for loading, as the published files lay it out:
* `config.json`: the 4B configuration (`model_type` "llavaonevision1_5", its `auto_map` naming
  the remote code, a `LLaVAOneVision1_5_text` text config, a `rice_vit` vision config), with
  `layers` text layers and as many vision blocks (at most the published 24) and, for
  `widths="ci"`, the
  widths reduced as `CI_WIDTHS` says; the vocabulary keeps its 151,936 real rows;
* `preprocessor_config.json` (Qwen2.5-VL image processor, 1-frame patches), `tokenizer_config.json`
  (the Qwen2 tokenizer with the real special tokens) and `chat_template.json`, copied from
  `data/llava-onevision-1.5/` (where `SOURCES.md` says where each value comes from);
* `vocab.json` + `merges.txt`: the real Qwen vocabulary (`livr_core.realconfig.vocab`);
* random weights in bf16 (the published dtype) under the published key names (`visual.*`,
  `model.*`, `lm_head.weight`), in two safetensors shards with their index, like a sharded
  Hub checkpoint.
The weights are those of the native model built from that config under `seed`, so the same
arguments give byte-identical files.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import save_file

from livr_core.backbones.llava_ov_model import (
    NATIVE_KEY_MAP,
    LlavaOnevision15Config,
    LlavaOnevision15ForConditionalGeneration,
)
from livr_core.realconfig.vocab import qwen_vocab_files

DATA = Path(__file__).parent / "data" / "llava-onevision-1.5"
COPIED_FILES = ("preprocessor_config.json", "tokenizer_config.json", "chat_template.json")
# Small widths for CPU tests; heads keep grouped-query attention (2 query heads per KV head) and
# head_dim 16 keeps both rotary tables non-trivial. The 151,936-row vocabulary stays real.
CI_WIDTHS: dict[str, dict[str, int]] = {
    "text_config": {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
                    "num_key_value_heads": 2, "head_dim": 16},
    "vision_config": {"hidden_size": 32, "embed_dim": 32, "intermediate_size": 64,
                      "num_heads": 2, "text_hidden_size": 64},
}
WEIGHTS_INDEX = "model.safetensors.index.json"
SHARDS = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")


def checkpoint_config(widths: Literal["ci", "real"] = "ci", layers: int = 2) -> dict[str, Any]:
    """The published config.json with `layers` layers (vision: at most its own 24) and, for
    "ci", `CI_WIDTHS`; `("real", 36)` is the published file itself."""
    if widths not in ("ci", "real"):
        raise ValueError(f"widths must be 'ci' or 'real', not {widths!r}")
    if layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    config = json.loads((DATA / "config.json").read_text())
    text, vision = config["text_config"], config["vision_config"]
    text.update(num_hidden_layers=layers, max_window_layers=layers,
                layer_types=["full_attention"] * layers)
    vision["depth"] = min(layers, vision["depth"])
    if widths == "ci":
        text.update(CI_WIDTHS["text_config"])
        vision.update(CI_WIDTHS["vision_config"])
    return config


def write_llava_ov15_checkpoint(
    out: Path, *, widths: Literal["ci", "real"] = "ci", layers: int = 2, seed: int = 0
) -> Path:
    """Write the checkpoint directory `out` (created; existing files are overwritten)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = checkpoint_config(widths, layers)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in COPIED_FILES:
        shutil.copyfile(DATA / name, out / name)
    for path in qwen_vocab_files():  # the cached conversion: converting takes seconds
        shutil.copyfile(path, out / path.name)
    _write_weights(out, config, seed)
    return out


def _write_weights(out: Path, config: dict[str, Any], seed: int) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaOnevision15ForConditionalGeneration(LlavaOnevision15Config(**config))
    tensors = {_published_name(k): v.to(torch.bfloat16).contiguous()
               for k, v in model.state_dict().items()}
    # Vision tower in the first shard, text model and head in the second.
    shards = [{k: v for k, v in tensors.items() if k.startswith("visual.") == first}
              for first in (True, False)]
    weight_map = {}
    for name, shard in zip(SHARDS, shards, strict=True):
        save_file(shard, out / name, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
    total = sum(v.numel() * v.element_size() for v in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / WEIGHTS_INDEX).write_text(json.dumps(index, indent=2) + "\n")


def _published_name(key: str) -> str:
    for pattern, replacement in NATIVE_KEY_MAP.items():
        renamed, hits = re.subn(pattern, replacement, key, count=1)
        if hits:
            return renamed
    return key
