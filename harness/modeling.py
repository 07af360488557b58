"""A method's model, built from `livr_core` parts, and greedy answers from it.

Owns `ModelOptions` (the `--executor-opt` keys), `Prepared`, `prepare`, `load_weights` and
`generate_answers` / `generate_texts`. The executor (`harness.train_executor`), `harness eval`
and `harness diagnose` all build a method's model here, so a run is evaluated with exactly the
model it was trained as.

A method maps onto livr_core as follows (`harness.methods` says what each method is):

| `MethodSpec` field | livr_core |
|---|---|
| `latents`, `shared_latents` | `add_latent_tokens(backbone, LatentConfig(k, shared, seed))` |
| `latent_position` | `EncodingConfig(latent_position=...)` |
| `finetune` "lora" / "full" | `apply_finetuning(backbone, latents, FinetuneConfig(mode))` |
| `finetune` "latent_rows" | peft `TrainableTokensConfig` on the latent rows only (see below) |
| `finetune` "none" | the backbone as loaded |
| `image_twice` | `harness.samples.to_samples(..., image_twice=True)` |

Prompt tuning trains the K latent rows and nothing else. `livr_core.lora.apply_finetuning` has
no such mode (its LoRA mode adds LoRA, its full mode unfreezes the language model), so this
module wraps the model in peft's trainable-token delta for the latent rows alone: the same
mechanism that trains the rows in the other modes, without LoRA.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from peft import TrainableTokensConfig, get_peft_model
from torch import nn

from harness.config import ConfigError
from harness.methods import MethodSpec
from livr_core.backbones import Backbone, LoadOptions, load_backbone
from livr_core.checkpoint import load_trainable
from livr_core.encoding import Encoder, EncodingConfig, Sample
from livr_core.inference import Generation, GenerationConfig, generate
from livr_core.latents import LatentConfig, LatentTokens, add_latent_tokens
from livr_core.lora import FinetuneConfig, apply_finetuning
from livr_core.trainer import autocast_for

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class ModelOptions:
    """How backbones are loaded and decoded; every field is an `--executor-opt KEY=VALUE`.

    RUN_SETTINGS change results and enter the cell hash (`LivrExecutor.fingerprint`); the other
    fields say where and how fast a run executes.
    """

    source: str | None = None  # local dir or Hub id of the backbone (runs of one backbone)
    models_dir: str | None = None  # <models_dir>/<backbone name>/ when it exists (several)
    device: str | None = None  # default: cuda when available, else cpu
    trust_remote_code: bool = False  # LLaVA-OV-1.5 ships its own modeling code: opt in only
    batch_size: int = 8  # prompts per generation forward; answers do not depend on it
    progress: bool = True  # training progress bars
    dtype: str = "auto"  # checkpoint dtype (bf16 for the real backbones); tiny ones: fp32
    min_pixels: int | None = None  # image pixel budget; None keeps the processor's own
    max_pixels: int | None = None
    max_new_tokens: int = 16  # answers are "(A)".."(D)" or a count: a few tokens
    precision: str = "auto"  # autocast: auto = bf16 on GPU, fp32 on CPU (as livr_core's trainer)

    RUN_SETTINGS: ClassVar[tuple[str, ...]] = ("dtype", "min_pixels", "max_pixels", "max_new_tokens", "precision")

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> ModelOptions:
        """Options from `--executor-opt` strings (or typed values); errors list the valid keys."""
        kinds = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(values) - set(kinds))
        if unknown:
            raise ConfigError(
                f"unknown executor option(s) {', '.join(unknown)}; valid: {', '.join(kinds)}"
            )
        return cls(**{k: _coerce(k, v, kinds[k]) for k, v in values.items()})

    def source_for(self, backbone: str) -> str | None:
        """Where backbone `backbone` loads from (None: its Hub id, or built in code)."""
        if self.source is not None:
            return self.source
        if self.models_dir is not None and (Path(self.models_dir) / backbone).is_dir():
            return str(Path(self.models_dir) / backbone)
        return None

    def resolved_device(self) -> torch.device:
        return torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def run_settings(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.RUN_SETTINGS}

    def with_run_settings(self, settings: Mapping[str, Any]) -> ModelOptions:
        """These options with a stored run's settings (so a run is evaluated as it was made)."""
        return replace(self, **{k: settings[k] for k in self.RUN_SETTINGS if k in settings})

    def autocast(self) -> AbstractContextManager:
        """The autocast the trainer uses, so validation, test and diagnostics decode alike."""
        return autocast_for(self.precision, self.resolved_device())


def _coerce(key: str, value: Any, kind: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if "bool" in kind:
            if value.lower() not in _TRUE + _FALSE:
                raise ValueError(value)
            return value.lower() in _TRUE
        if "int" in kind:
            optional = "None" in kind and value.lower() in ("", "none")
            return None if optional else int(value)
    except ValueError:
        raise ConfigError(f"executor option {key}={value!r}: expected {kind}") from None
    if key == "precision" and value not in ("auto", "bf16", "fp32"):
        raise ConfigError(f"executor option precision={value!r}: use auto, bf16 or fp32")
    if key == "dtype" and value != "auto" and not isinstance(getattr(torch, value, None),
                                                             torch.dtype):
        raise ConfigError(f"executor option dtype={value!r}: use auto or a torch dtype name "
                          "(bfloat16, float16, float32)")
    return value or None if "None" in kind else value


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
        min_pixels=options.min_pixels,
        max_pixels=options.max_pixels,
        device=options.resolved_device(),
    )


def prepare(backbone_name: str, method: MethodSpec, options: ModelOptions, seed: int) -> Prepared:
    """Load the backbone and make it `method`'s model (untrained: fresh LoRA / latent rows)."""
    backbone = load_backbone(backbone_name, load_options(backbone_name, options))
    latents = None
    if method.latents is not None:
        latents = add_latent_tokens(
            backbone, LatentConfig(k=method.latents, shared=method.shared_latents, seed=seed)
        )
    encoder = Encoder(backbone, latents, EncodingConfig(latent_position=method.latent_position))
    return Prepared(backbone, latents, encoder, _finetuned(backbone, latents, method, seed), method)


def _finetuned(
    backbone: Backbone, latents: LatentTokens | None, method: MethodSpec, seed: int
) -> nn.Module:
    if method.finetune == "none":
        return backbone.model
    if method.finetune == "latent_rows":
        assert latents is not None  # MethodSpec guarantees it
        return get_peft_model(
            backbone.model,
            TrainableTokensConfig(
                target_modules=[backbone.adapter.embedding_module], token_indices=list(latents.ids)
            ),
        )
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
    with options.autocast():
        return generate(prepared.model, prepared.adapter, prepared.encoder, samples, config)


def generate_texts(
    prepared: Prepared,
    samples: Sequence[Sample],
    options: ModelOptions,
    config: GenerationConfig | None = None,
) -> dict[str, str]:
    """Raw answer texts keyed by sample id."""
    return {g.id: g.text for g in generate_answers(prepared, samples, options, config)}
