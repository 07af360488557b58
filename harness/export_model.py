"""`harness export RUN --out DIR`: a trained run as a stock Hugging Face checkpoint.

Owns `export_run`. The run's model is rebuilt exactly as `harness eval` rebuilds it
(`harness.run_folder.load_run`: its backbone, method, settings recorded at training, and its
selected best/ or final/ weights), then written by `livr_core.export.export_pretrained`: LoRA
merged, latent rows in the embedding, latent tokens in the tokenizer, their ids suppressed in
`generation_config.json`, and `livr.json` saying how to prompt it. The training configuration
(the run's `config.json`: method, schedule, data digest, hash) goes into `livr.json` too, so an
export can be traced back to the run that made it.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.options import ModelOptions
from harness.run_folder import load_run
from harness.store import CONFIG


def export_run(run_dir: Path, out: Path, options: ModelOptions, overwrite: bool = False) -> Path:
    """Export the trained model of `run_dir` to `out` (new or empty unless `overwrite`)."""
    from livr_core.export import export_pretrained  # the model stack, only when exporting

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        # Checked before the model is loaded: a refusal should not cost a model load.
        raise FileExistsError(f"{out} exists and is not empty; choose another --out or pass "
                              "--overwrite to replace it (nothing was written)")
    loaded = load_run(run_dir, options)
    training = json.loads((Path(run_dir) / CONFIG).read_text(encoding="utf-8"))
    training["weights"] = str(loaded.weights) if loaded.weights is not None else None
    prepared = loaded.prepared
    return export_pretrained(
        prepared.model, prepared.backbone, prepared.latents, out,
        encoding=prepared.encoder.config, training=training, overwrite=overwrite,
    )
