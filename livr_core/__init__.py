"""livr_core: everything that makes a vision-language model a LIVR model.

Knows nothing about task names, files on disk or report formats; depends on no other package of
this repository. Part 1 (this code): backbones, encoding with latents, masks, position ids,
latent rows, LoRA. The trainer, inference and attention read-outs build on these interfaces:

    from livr_core.backbones import load_backbone
    from livr_core.encoding import Encoder, Sample
    from livr_core.latents import LatentConfig, add_latent_tokens
    from livr_core.lora import apply_finetuning, param_groups
    from livr_core.masks import MaskVariant
    from livr_core.model_inputs import forward_inputs

    backbone = load_backbone("tiny-qwen2.5-vl")              # model + processor + adapter
    latents = add_latent_tokens(backbone, LatentConfig(k=16))  # before peft wrapping
    encoder = Encoder(backbone, latents)
    model = apply_finetuning(backbone, latents)               # LoRA on the LM + K latent rows
    optimizer = torch.optim.AdamW(param_groups(model, weight_decay=0.01), lr=1e-4)
    batch = encoder([Sample(images, prompt, answer, id)])
    loss = model(**forward_inputs(model, backbone.adapter, batch, MaskVariant.BOTTLENECK),
                 labels=batch.labels, use_cache=False).loss

Modules: `backbones/` (adapters, registry, tiny offline models), `tokenizer` (offline tiny
tokenizer), `latents`, `encoding`, `token_types`, `masks`, `model_inputs`, `lora`.
"""
