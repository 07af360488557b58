"""livr_core: everything that makes a vision-language model a LIVR model.

Knows nothing about task names, files on disk or report formats; depends on no other package of
this repository. The names a user needs are importable from here (`__all__`); each lives in the
module that owns it, which is imported the first time the name is used, so `import livr_core`
(and `from livr_core import TrainConfig`) costs no torch import:

    from livr_core import (
        Encoder, GenerationConfig, LatentConfig, MaskVariant, Sample, TrainConfig, Trainer,
        add_latent_tokens, answer_latent_mass, apply_finetuning, forward_inputs, generate,
        load_backbone, param_groups,
    )

    backbone = load_backbone("tiny-qwen2.5-vl")              # model + processor + adapter
    latents = add_latent_tokens(backbone, LatentConfig(k=16))  # before peft wrapping
    encoder = Encoder(backbone, latents)
    model = apply_finetuning(backbone, latents)               # LoRA on the LM + K latent rows
    result = Trainer(model, backbone.adapter, encoder, train_samples, "runs/x",
                     TrainConfig(), evaluate=lambda m: accuracy(m, val_samples)).fit()
    answers = generate(result.model, backbone.adapter, encoder, test_samples)
    removed = generate(result.model, backbone.adapter, encoder, test_samples,
                       GenerationConfig(remove_latents=True))
    masked = generate(result.model, backbone.adapter, encoder, test_samples,
                      GenerationConfig(mask=MaskVariant.BOTTLENECK))
    mass = answer_latent_mass(result.model, backbone.adapter, encoder(samples_with_answers))

One training step by hand (what the trainer does for every micro-batch):

    optimizer = torch.optim.AdamW(param_groups(model, weight_decay=0.01), lr=1e-4)
    batch = encoder([Sample(images, prompt, answer, id)])
    loss = model(**forward_inputs(model, backbone.adapter, batch, MaskVariant.BOTTLENECK),
                 labels=batch.labels, use_cache=False).loss

Modules: `configs` (every configuration dataclass and default, importable without torch),
`backbones/` (the lazy registry, adapters, tiny offline models), `tokenizer` (offline tiny
tokenizer), `latents`, `encoding`, `token_types`, `masks`, `model_inputs`, `lora`; `schedule`
(warm-up + cosine per stage), `trainer`, `checkpoint` (atomic, exactly resumable checkpoints),
`distributed` (single process or accelerate DDP), `inference` (greedy generation under any
mask, choice scoring), `attention` (eager read-outs), `mirage` (Mirage's objective), `export`
(a trained model as a stock Hugging Face checkpoint).
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the module that owns it
_OWNERS = {
    **dict.fromkeys(("EncodingConfig", "FinetuneConfig", "GenerationConfig", "LatentConfig",
                     "LoadOptions", "MaskVariant", "MirageConfig", "TrainConfig"),
                    "livr_core.configs"),
    **dict.fromkeys(("BACKBONES", "BackboneUnavailable", "get_backbone", "load_backbone"),
                    "livr_core.backbones"),
    **dict.fromkeys(("Backbone", "BackboneAdapter"), "livr_core.backbones.base"),
    **dict.fromkeys(("LatentTokens", "add_latent_tokens"), "livr_core.latents"),
    **dict.fromkeys(("Batch", "Encoder", "Sample"), "livr_core.encoding"),
    **dict.fromkeys(("apply_finetuning", "param_groups"), "livr_core.lora"),
    "forward_inputs": "livr_core.model_inputs",
    **dict.fromkeys(("TrainResult", "Trainer"), "livr_core.trainer"),
    **dict.fromkeys(("Generation", "generate", "score_choices"),
                    "livr_core.inference"),
    **dict.fromkeys(("answer_latent_mass", "latent_image_maps", "last_hidden_states"),
                    "livr_core.attention"),
    **dict.fromkeys(("export_pretrained", "read_livr_info"), "livr_core.export"),
}

__all__ = sorted(_OWNERS)  # noqa: PLE0605 - derived, so it cannot differ from the owners


def __getattr__(name: str) -> Any:
    """A public name, imported from its owner module on first use."""
    owner = _OWNERS.get(name)
    if owner is None:
        raise AttributeError(f"module 'livr_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(owner), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
