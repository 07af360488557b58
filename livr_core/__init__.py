"""livr_core: everything that makes a vision-language model a LIVR model.

Knows nothing about task names, files on disk or report formats; depends on no other package of
this repository. Part 1: backbones, encoding with latents, masks, position ids, latent rows,
LoRA. Part 2 builds on them: the two-stage trainer with exact resume, inference and attention
read-outs:

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

Training and inference (the caller supplies samples and a validation metric):

    from livr_core.trainer import TrainConfig, Trainer
    from livr_core.inference import GenerationConfig, generate
    from livr_core.attention import answer_latent_mass, latent_image_maps

    result = Trainer(model, backbone.adapter, encoder, train_samples, "runs/x",
                     TrainConfig(), evaluate=lambda m: accuracy(m, val_samples)).fit()
    answers = generate(result.model, backbone.adapter, encoder, test_samples)
    removed = generate(result.model, backbone.adapter, encoder, test_samples,
                       GenerationConfig(remove_latents=True))
    masked = generate(result.model, backbone.adapter, encoder, test_samples,
                      GenerationConfig(mask=MaskVariant.BOTTLENECK))
    mass = answer_latent_mass(result.model, backbone.adapter, encoder(samples_with_answers))

Modules: `configs` (every configuration dataclass and default, importable without torch),
`backbones/` (adapters, registry, tiny offline models), `tokenizer` (offline tiny tokenizer),
`latents`, `encoding`, `token_types`, `masks`, `model_inputs`, `lora`; `schedule` (warm-up +
cosine per stage), `trainer`, `checkpoint` (atomic, exactly resumable checkpoints),
`distributed` (single process or accelerate DDP), `inference` (greedy generation under any
mask, choice scoring), `attention` (eager read-outs).
"""
