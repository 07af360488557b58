"""What gets trained: LoRA on the language model (or its full fine-tuning) plus the K latent rows.

Owns `apply_finetuning` and `param_groups` (`FinetuneConfig` is in `livr_core.configs`).

* LoRA mode (paper default): peft LoRA on q/k/v/o/gate/up/down of the language model only,
  selected by the adapter's regex anchored on `language_model`, so the vision tower and the
  projector stay frozen (Qwen2.5-VL's vision MLP reuses the gate/up/down names). The latent rows
  are trained through peft's `trainable_token_indices`: a K x d delta replaces exactly those rows
  of the input embedding, and, with tied embeddings, of the output head through the same delta.
  The base embedding stays frozen, and since only the delta is a parameter, weight decay never
  touches the other rows (a gradient-mask hook on the full matrix would still decay them).
* Full mode (Mirage comparison): every decoder layer and the final norm of the language model
  are trained; the embedding matrix stays frozen except the latent rows (peft `TrainableTokens`).
* Latent-rows mode (prompt tuning ablation): only the K latent rows are trained (the same peft
  `TrainableTokens` delta, no LoRA); the model is otherwise frozen.
* Without latents (direct SFT) only LoRA, or the language model, is trained.

Call `add_latent_tokens` first: the delta starts as a copy of the rows at wrapping time. The
returned model is a `PeftModel` (save with `save_pretrained`, reload with
`PeftModel.from_pretrained(base, dir, is_trainable=...)` on an identically prepared base), or the
plain model in full mode without latents.
"""

from __future__ import annotations

from typing import Any

import torch
from peft import LoraConfig, TrainableTokensConfig, get_peft_model
from torch import nn

from livr_core.backbones.base import Backbone
from livr_core.configs import FinetuneConfig
from livr_core.latents import LatentTokens


def apply_finetuning(
    backbone: Backbone, latents: LatentTokens | None, config: FinetuneConfig = FinetuneConfig()
) -> nn.Module:
    """Wrap `backbone.model` so that exactly the configured parameters are trainable."""
    adapter = backbone.adapter
    token_indices = {adapter.embedding_module: list(latents.trainable_ids)} if latents else None
    if config.mode == "lora":
        with torch.random.fork_rng(devices=[]):  # adapters are created on the CPU
            torch.manual_seed(config.seed)
            return get_peft_model(
                backbone.model,
                LoraConfig(
                    r=config.r,
                    lora_alpha=config.alpha,
                    lora_dropout=config.dropout,
                    target_modules=adapter.lora_target_regex,
                    trainable_token_indices=token_indices,
                    bias="none",
                ),
            )
    if config.mode == "latent_rows" and not latents:
        raise ValueError("FinetuneConfig(mode='latent_rows') trains only the latent rows: "
                         "call add_latent_tokens first and pass its LatentTokens")
    model = backbone.model
    if latents:
        # Freezes every base parameter and trains a delta over exactly the K latent rows.
        model = get_peft_model(
            model,
            TrainableTokensConfig(
                target_modules=[adapter.embedding_module], token_indices=list(latents.trainable_ids)
            ),
        )
    else:
        model.requires_grad_(False)
    if config.mode == "full":
        for name, param in model.named_parameters():
            if ".language_model." in f".{name}" and adapter.embedding_module not in name:
                param.requires_grad_(True)
    return model


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups over the trainable parameters only: frozen rows never see weight decay.

    Matrices (LoRA A/B, the latent delta, linear weights) are decayed; vectors (norm weights,
    biases; full mode only) are not, following the Hugging Face Trainer convention.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]
