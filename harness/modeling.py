"""A method's model, built from `livr_core` parts, and greedy answers from it.

Owns `Prepared`, `load_model`, `prepare`, `load_weights` and `generate_answers` /
`generate_texts`, for `harness.options.ModelOptions` (the `--executor-opt` keys). The executor
(`harness.train_executor`), `harness eval` and `harness diagnose` all build a method's model
here, so a run is evaluated with exactly the model it was trained as.

A method maps onto livr_core as follows (`harness.methods` says what each method is):

| `MethodSpec` field | livr_core |
|---|---|
| `latents`, `shared_latents` | `add_latent_tokens(backbone, LatentConfig(k, shared, seed))` |
| `latent_position` | `EncodingConfig(latent_position=...)` |
| `finetune` "lora", "full", "latent_rows" | `apply_finetuning(..., FinetuneConfig(mode))` |
| `finetune` "none" | the backbone as loaded |
| `image_twice` | `harness.samples.to_samples(..., image_twice=True)` |
| `objective` "mirage" | `LatentConfig(markers=True)`; the trainer's `MirageObjective`; answers with `MirageLatents` |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.errors import ConfigError
from harness.methods import MethodSpec
from harness.options import ModelOptions, local_names
from livr_core.backbones import BackboneUnavailable, load_backbone
from livr_core.backbones.base import Backbone
from livr_core.checkpoint import load_trainable
from livr_core.configs import (
    EncodingConfig,
    FinetuneConfig,
    GenerationConfig,
    LatentConfig,
    LoadOptions,
)
from livr_core.encoding import Encoder, Sample
from livr_core.inference import Generation, generate
from livr_core.latents import LatentTokens, add_latent_tokens
from livr_core.lora import apply_finetuning
from livr_core.mirage import MirageLatents


@dataclass
class Prepared:
    """A method's model: the backbone, its latent tokens (if any), encoder and wrapped model."""

    backbone: Backbone
    latents: LatentTokens | None
    encoder: Encoder
    model: nn.Module  # peft-wrapped when the method trains; the backbone's model otherwise
    method: MethodSpec

    @property
    def adapter(self) -> Any:
        return self.backbone.adapter


def load_options(name: str, options: ModelOptions) -> LoadOptions:
    dtype = options.dtype if options.dtype == "auto" else getattr(torch, options.dtype)
    return LoadOptions(
        source=options.source_for(name),
        trust_remote_code=options.trust_remote_code,
        dtype=dtype,
        attn_implementation=options.attn_implementation,
        min_pixels=options.min_pixels,
        max_pixels=options.max_pixels,
        device=options.resolved_device(),
    )


def load_model(name: str, options: ModelOptions) -> Backbone:
    """The backbone as `options` say; a checkpoint that is not there fails at once with the
    executor options that point at a local copy (`--executor-opt source=` / `models_dir=`)."""
    try:
        return load_backbone(name, load_options(name, options))
    except BackboneUnavailable as exc:
        looked = ""
        if options.models_dir is not None:
            looked = (" (looked for " + ", ".join(
                str(Path(options.models_dir) / n) for n in local_names(name)) + ")")
        raise ConfigError(
            f"{exc.reason}.\nPoint at a local copy with --executor-opt source=DIR (the checkpoint "
            f"directory of {name}) or --executor-opt models_dir=DIR (a folder holding it under "
            f"one of the names {', '.join(local_names(name))}){looked}"
        ) from None


def prepare(backbone_name: str, method: MethodSpec, options: ModelOptions, seed: int) -> Prepared:
    """Load the backbone and make it `method`'s model (untrained: fresh LoRA / latent rows)."""
    backbone = load_model(backbone_name, options)
    latents = None
    if method.latents is not None:
        latents = add_latent_tokens(backbone, LatentConfig(
            k=method.latents, shared=method.shared_latents, seed=seed,
            markers=method.objective == "mirage",
        ))
    encoder = Encoder(backbone, latents, EncodingConfig(latent_position=method.latent_position))
    return Prepared(backbone, latents, encoder, _finetuned(backbone, latents, method, seed), method)


def _finetuned(
    backbone: Backbone, latents: LatentTokens | None, method: MethodSpec, seed: int
) -> nn.Module:
    if method.finetune == "none":
        return backbone.model
    return apply_finetuning(backbone, latents, FinetuneConfig(mode=method.finetune, seed=seed))


def load_weights(prepared: Prepared, directory: Path) -> None:
    """Load trained weights (a trainer's best/ or final/ export) into a prepared model."""
    load_trainable(prepared.model, directory)


def generate_answers(
    prepared: Prepared,
    samples: Sequence[Sample],
    options: ModelOptions,
    config: GenerationConfig | None = None,
) -> list[Generation]:
    """Greedy answers (`livr_core.inference.generate`) under the options' batch size, length
    and autocast; `config` overrides the mask, latent removal or logits."""
    base = GenerationConfig(max_new_tokens=options.max_new_tokens, batch_size=options.batch_size)
    config = replace(config, max_new_tokens=base.max_new_tokens, batch_size=base.batch_size) \
        if config is not None else base
    prefill = MirageLatents() if prepared.method.objective == "mirage" else None
    with options.autocast():
        return generate(
            prepared.model, prepared.adapter, prepared.encoder, samples, config, prefill
        )


def generate_texts(
    prepared: Prepared,
    samples: Sequence[Sample],
    options: ModelOptions,
    config: GenerationConfig | None = None,
) -> dict[str, str]:
    """Raw answer texts keyed by sample id."""
    return {g.id: g.text for g in generate_answers(prepared, samples, options, config)}
