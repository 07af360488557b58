"""A trained LIVR (or SFT) model as a plain Hugging Face checkpoint that stock tools can load.

Owns `LIVR_INFO` (the `livr.json` file name), `export_pretrained`, `read_livr_info`,
`latent_suffix` and `vllm_layout_problems`.

The training checkpoints (`livr_core.checkpoint`) hold a peft adapter and the trained rows, which
only this toolkit can put back together. An export is what every other tool expects instead:

* `model.safetensors` (+ `config.json`): the LoRA merged into the weights (`merge_and_unload`),
  the K trained latent rows inside the embedding matrix (and, with tied embeddings, the output
  head, which is the same tensor), in the key layout `save_pretrained` writes;
* the processor with the tokenizer carrying the latent tokens as added special tokens (so
  `<|latent_0|>` is one token, and `skip_special_tokens` drops it from decoded text);
* `generation_config.json` with the latent ids in `suppress_tokens` (the model never generates a
  latent: training never supervised one, and the toolkit masks them the same way), the
  checkpoint's end tokens kept;
* `livr.json`: K, the latent token strings and ids, where they go in the prompt and the exact
  text to insert (`latent_sequence`), and the training configuration, so a user needs nothing
  else: append `latent_sequence` to the user's text (after the prompt, inside the user turn) and
  decode normally. At test time LIVR uses the standard causal mask, so no custom attention code
  is needed (`harness export` / README "Using a trained model elsewhere").

`vllm_layout_problems` checks an export against what vLLM's loader expects as far as that can
be known without vLLM (an architecture vLLM implements for this family, safetensors weights under
the prefixes its weight mappers rename, token ids inside the embedding, end tokens present).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from safetensors import safe_open
from torch import nn

from livr_core.backbones.base import Backbone, unwrap
from livr_core.configs import EncodingConfig
from livr_core.durable import publish, recover, remove, temp_path
from livr_core.latents import LatentTokens

LIVR_INFO = "livr.json"
FORMAT = "livr-export/1"

# Architectures vLLM implements for the families this toolkit trains, with the weight-name
# prefixes its `hf_to_vllm_mapper`s accept for them (vllm/model_executor/models/qwen2_5_vl.py,
# qwen3_vl.py, llava.py, llava_onevision1_5.py: the transformers-5 "model.language_model." /
# "model.visual." layout and the original flat "model." / "visual." / "language_model." one).
# transformers 5.24 saves Qwen2.5-VL in the original layout, Qwen3-VL in the new one and LLaVA
# in the original one, exactly as the published checkpoints are.
VLLM_ARCHITECTURES = {
    "Qwen2_5_VLForConditionalGeneration": ("model.", "visual.", "lm_head."),
    "Qwen3VLForConditionalGeneration": ("model.language_model.", "model.visual.", "lm_head."),
    # vLLM's LlavaOnevision1_5_ForConditionalGeneration, registered under the Hub config's name
    "LLaVAOneVision1_5_ForConditionalGeneration": ("model.", "visual.", "lm_head."),
    "LlavaForConditionalGeneration": (
        "language_model.", "vision_tower.", "multi_modal_projector.", "model.language_model.",
        "model.vision_tower.", "model.multi_modal_projector.", "lm_head."),
}


def latent_suffix(info: Mapping[str, Any]) -> str:
    """The exact text a prompt gets from `livr.json` (empty for an SFT export)."""
    return str(info.get("latent_sequence", ""))


def read_livr_info(directory: str | os.PathLike) -> dict[str, Any]:
    """`livr.json` of an export, checked for the fields a user of the export relies on."""
    path = Path(directory) / LIVR_INFO
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a LIVR export: no {LIVR_INFO} "
                                "(make one with `harness export RUN --out DIR`)")
    info = json.loads(path.read_text(encoding="utf-8"))
    missing = [k for k in ("format", "k", "latent_tokens", "latent_ids", "latent_sequence",
                           "latent_position") if k not in info]
    if missing or info.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file (missing {missing or 'format'}); "
                         "re-export the run with this version of the toolkit")
    return info


def _merged(model: nn.Module) -> nn.Module:
    """The plain transformers model with every adapter folded into its weights (in place)."""
    if hasattr(model, "peft_config"):
        return model.merge_and_unload()
    return unwrap(model)


def export_pretrained(
    model: nn.Module,
    backbone: Backbone,
    latents: LatentTokens | None,
    out: str | os.PathLike,
    *,
    encoding: EncodingConfig = EncodingConfig(),
    training: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `model` (peft-wrapped or plain) as a stock Hugging Face checkpoint in `out`.

    The adapter is merged INTO `model` (peft's `merge_and_unload`): reload the run to train on.
    `out` must be new or empty unless `overwrite`; it is written to a temporary sibling and
    renamed into place only when complete."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; choose another --out or pass "
                              "--overwrite to replace it (nothing was written)")
    plain = _merged(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    recover(out.parent)  # leftovers of an export killed midway
    tmp = temp_path(out, "tmp")
    remove(tmp)
    tmp.mkdir()
    try:
        generation = plain.generation_config
        suppress = sorted(set(latents.ids)) if latents is not None else []
        if suppress:
            generation.suppress_tokens = sorted(set(generation.suppress_tokens or []) | set(suppress))
        plain.save_pretrained(tmp, safe_serialization=True)
        published = backbone.adapter.published_architecture
        if published:  # save_pretrained writes the class name; keep the checkpoint's own
            config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
            config["architectures"] = [published]
            (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n",
                                             encoding="utf-8")
        backbone.processor.save_pretrained(tmp)
        info = {
            "format": FORMAT,
            "backbone": backbone.name,
            "architecture": type(plain).__name__,
            "k": latents.k if latents is not None else 0,
            "latent_tokens": list(latents.tokens) if latents is not None else [],
            "latent_ids": list(latents.ids) if latents is not None else [],
            "latent_sequence": latents.sequence if latents is not None else "",
            "latent_position": encoding.latent_position,
            "how_to_prompt": (
                "Put the images first in the user turn, then the prompt text with "
                "latent_sequence appended right after it (latent_position 'after_prompt') or "
                "prepended (before_prompt); apply the chat template with the generation prompt "
                "and decode greedily with the standard causal mask. The latent ids are in "
                "generation_config.json suppress_tokens."
                if latents is not None else "A direct-SFT model: prompt it like the base model."),
            "suppress_token_ids": suppress,
            "training": dict(training or {}),
        }
        (tmp / LIVR_INFO).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n",
                                     encoding="utf-8")
        publish(tmp, out)  # fsynced, then renamed into place (a previous export moved aside)
    except BaseException:
        remove(tmp)
        raise
    return out


def vllm_layout_problems(directory: str | os.PathLike) -> list[str]:
    """What in an export would stop vLLM's loader, as far as it can be checked without vLLM.

    Empty when: `config.json` names an architecture vLLM implements for this family; the weights
    are safetensors whose every key starts with a prefix vLLM's weight mapper renames for it; the
    tokenizer's ids (latent tokens included) fit in the embedding matrix; `livr.json`'s latent
    ids are the tokenizer's ids of its latent tokens; the end tokens are set."""
    directory = Path(directory)
    problems: list[str] = []
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    archs = config.get("architectures") or []
    arch = archs[0] if archs else None
    prefixes = VLLM_ARCHITECTURES.get(arch or "")
    if prefixes is None:
        problems.append(f"config.json architectures {archs}: vLLM implements "
                        f"{sorted(VLLM_ARCHITECTURES)} for the backbones of this toolkit")
    shards = sorted(directory.glob("*.safetensors"))
    if not shards or list(directory.glob("*.bin")):
        problems.append("weights must be safetensors only (vLLM loads them without pickle)")
    keys: list[str] = []
    for shard in shards:
        with safe_open(str(shard), framework="pt") as handle:
            keys.extend(handle.keys())
    if prefixes is not None:
        odd = [k for k in keys if not k.startswith(prefixes)]
        if odd:
            problems.append(f"{len(odd)} weight names outside {prefixes}, e.g. {odd[:3]}")
    text = config.get("text_config") or config
    vocab = int(text.get("vocab_size") or config.get("vocab_size") or 0)
    from transformers import AutoTokenizer  # only this check needs a tokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    top = max(tokenizer.get_vocab().values())
    if vocab and top >= vocab:
        problems.append(f"tokenizer id {top} >= vocab_size {vocab}: vLLM's embedding is too small")
    info = read_livr_info(directory)
    ids = [int(i) for i in tokenizer.convert_tokens_to_ids(info["latent_tokens"])]
    if ids != info["latent_ids"]:
        problems.append(f"livr.json latent ids {info['latent_ids']} but the tokenizer has {ids}")
    generation = json.loads((directory / "generation_config.json").read_text(encoding="utf-8"))
    if generation.get("eos_token_id") is None:
        problems.append("generation_config.json has no eos_token_id")
    return problems
