"""Usage diagnostics of a run (paper Sec. 4.4.1 and 4.5): does the model use its latents?

Owns `DiagnoseConfig`, `CONDITIONS`, `diagnose` and `format_summary`. For a run folder (any
cell, or a `harness train` run) and a split of its tasks, it measures

* accuracy under four evaluation conditions (`CONDITIONS`): the standard one (causal mask,
  latents after the prompt), latents removed, the stage-1 bottleneck mask at test time, and the
  bottleneck with the latents removed. In the last one nothing after the image can see it, so
  the model answers without the image: accuracy must fall to the no-image level (the random and
  best-constant baselines are reported beside it);
* that this no-image condition is exactly pixel-invariant: the first examples are answered again
  with every image replaced by noise of the same size, and the answers (token ids) and logits
  must not move at all;
* the mean attention from answer tokens (the gold answer, teacher-forced) to latent tokens,
  averaged over heads, layers and answer positions (`livr_core.attention`), plus the answer's
  mass on every other token kind;
* pictures: latent-to-image attention over the input images of the first examples, and a t-SNE
  of final-layer hidden states of latent / image / text positions of the first 50 evaluation
  examples of EACH task (paper Sec. 4.5: "from the first 50 evaluation examples of each of the
  six tasks"; `tsne_per="total"` keeps the first 50 of the whole list instead).

Everything lands in `<run>/diagnostics/` (diagnostics.json and the PNGs) and a short summary is
printed beside the paper's numbers where the backbone, task and method match
(`harness.paper.DIAGNOSTICS`). A run without latents gets the conditions that exist for it (the
"latents removed" rows equal their counterparts) and no overlays.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from builders.record import Record
from harness.errors import ConfigError
from harness.executor import CellResult
from harness.modeling import Prepared, generate_answers, generate_texts
from harness.names import backbone_label, task_label
from harness.paper import DIAGNOSTICS
from harness.run_folder import LoadedRun, SplitData
from harness.runner import score_cell
from harness.samples import to_samples
from harness.visualize import save_overlay, save_tsne
from livr_core.attention import (
    key_type_mass,
    last_hidden_states,
    latent_image_maps,
    mean_attention,
)
from livr_core.configs import GenerationConfig, MaskVariant
from livr_core.encoding import Sample
from livr_core.token_types import TokenType

CONDITIONS: dict[str, GenerationConfig] = {
    "standard": GenerationConfig(),
    "no_latents": GenerationConfig(remove_latents=True),
    "bottleneck": GenerationConfig(mask=MaskVariant.BOTTLENECK),
    "bottleneck_no_latents": GenerationConfig(mask=MaskVariant.BOTTLENECK, remove_latents=True),
}
LABELS = {
    "standard": "standard (causal)",
    "no_latents": "latents removed",
    "bottleneck": "bottleneck mask at test",
    "bottleneck_no_latents": "bottleneck, latents removed",
}
# The paper's three colours: the question (PROMPT) and the chat scaffolding (TEXT) are both text.
TSNE_KINDS = {TokenType.LATENT: "latent", TokenType.IMAGE: "image", TokenType.TEXT: "text",
              TokenType.PROMPT: "text"}


@dataclass(frozen=True)
class DiagnoseConfig:
    overlays: int = 4  # examples drawn with latent-to-image attention maps
    tsne_examples: int = 50  # paper Sec. 4.5: the first 50 evaluation examples ...
    tsne_per: Literal["task", "total"] = "task"  # ... of each task ("total": 50 in all)
    tsne_points_per_kind: int = 1000  # cap per kind: Barnes-Hut t-SNE stays within a minute
    invariance_examples: int = 8  # examples re-answered with noise images
    seed: int = 0  # noise images, point subsampling and t-SNE

    def __post_init__(self) -> None:
        if self.overlays < 0 or min(self.tsne_examples, self.tsne_points_per_kind,
                                    self.invariance_examples) < 1:
            raise ConfigError("diagnose: --overlays must be >= 0 and --tsne-examples >= 1")
        if self.tsne_per not in ("task", "total"):
            raise ConfigError(f"diagnose: --tsne-per must be 'task' or 'total', not "
                              f"{self.tsne_per!r}")


def _score(data: SplitData, texts: dict[str, str]) -> dict[str, Any]:
    """metrics.json-style metrics of `texts` on `data`, scored as `harness run` scores a cell."""
    return score_cell(data.cell, data, CellResult(texts))[1]


def _accuracy(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "macro": metrics["macro_mean"],
        "tasks": {t: m["accuracy"] for t, m in metrics["tasks"].items()},
        "parse_failure_rate": {t: m["parse_failure_rate"] for t, m in metrics["tasks"].items()},
    }


def _noise_like(samples: Sequence[Sample], seed: int) -> list[Sample]:
    """The samples with every image replaced by uniform noise of the same size."""
    rng = np.random.default_rng(seed)

    def noise(image: Image.Image) -> Image.Image:
        pixels = rng.integers(0, 256, (image.height, image.width, 3), dtype=np.uint8)
        return Image.fromarray(pixels)

    return [replace(s, images=[noise(im) for im in s.images]) for s in samples]


def _pixel_invariance(loaded: LoadedRun, samples: Sequence[Sample], seed: int) -> dict[str, Any]:
    config = replace(CONDITIONS["bottleneck_no_latents"], return_logits=True)
    real = generate_answers(loaded.prepared, samples, loaded.options, config)
    noise = generate_answers(loaded.prepared, _noise_like(samples, seed), loaded.options, config)
    diffs = []
    for a, b in zip(real, noise):
        steps = min(len(a.logits), len(b.logits))
        x, y = a.logits[:steps], b.logits[:steps]
        same_inf = np.array_equal(np.isinf(x), np.isinf(y))
        finite = np.isfinite(x) & np.isfinite(y)
        diffs.append(float(np.abs(x[finite] - y[finite]).max()) if same_inf else float("inf"))
    return {
        "condition": "bottleneck_no_latents",
        "examples": len(samples),
        "identical_answers": sum(a.token_ids == b.token_ids for a, b in zip(real, noise)),
        "max_logit_diff": max(diffs, default=0.0),
    }


def _batches(prepared: Prepared, samples: Sequence[Sample], size: int, with_answer: bool):
    device = next(prepared.model.parameters()).device
    for start in range(0, len(samples), size):
        chunk = samples[start : start + size]
        yield chunk, prepared.encoder(chunk, with_answer=with_answer).to(device)


def _answer_attention(loaded: LoadedRun, samples: Sequence[Sample]) -> dict[str, Any]:
    """Mean attention mass of answer tokens on each key kind, over examples (gold answers)."""
    prepared, masses = loaded.prepared, []
    with loaded.options.autocast():
        for _, batch in _batches(prepared, samples, loaded.options.batch_size, True):
            attention = mean_attention(prepared.model, prepared.adapter, batch)
            masses.append(key_type_mass(attention, batch, TokenType.ANSWER))
    mean = np.concatenate(masses).mean(0)
    by_kind = {t.name.lower(): float(mean[t]) for t in TokenType}
    return {"answer_to_latent": by_kind["latent"], "answer_by_key_kind": by_kind,
            "examples": len(samples), "answers": "gold, teacher-forced"}


def _overlays(loaded: LoadedRun, samples: Sequence[Sample], out: Path) -> list[str]:
    prepared, paths = loaded.prepared, []
    with loaded.options.autocast():
        for chunk, batch in _batches(prepared, samples, loaded.options.batch_size, False):
            maps = latent_image_maps(prepared.model, prepared.adapter, batch)
            for sample, grids in zip(chunk, maps):
                path = out / f"attention-{sample.id}.png"
                title = f"{sample.id}: latent-to-image attention (heads, layers, latents averaged)"
                paths.append(str(save_overlay(sample.images, grids, path, title)))
    return paths


def _hidden_states(
    loaded: LoadedRun, samples: Sequence[Sample], cap: int, seed: int
) -> tuple[np.ndarray, list[str]]:
    """Final-layer hidden states of latent / image / text prompt positions, at most `cap` each."""
    prepared = loaded.prepared
    found: dict[str, list[np.ndarray]] = {kind: [] for kind in TSNE_KINDS.values()}
    with loaded.options.autocast():
        for _, batch in _batches(prepared, samples, loaded.options.batch_size, False):
            last = last_hidden_states(prepared.model, prepared.adapter, batch)
            real = batch.attention_mask.bool()
            for token_type, kind in TSNE_KINDS.items():
                chosen = (batch.token_types == token_type) & real
                found[kind].append(last[chosen].cpu().numpy())
    rng = np.random.default_rng(seed)
    features, kinds = [], []
    for kind, parts in found.items():
        rows = np.concatenate(parts) if parts else np.empty((0, 0))
        if len(rows) > cap:
            rows = rows[np.sort(rng.choice(len(rows), cap, replace=False))]
        features.append(rows)
        kinds += [kind] * len(rows)
    return np.concatenate([f for f in features if len(f)]), kinds


def tsne_records(data: SplitData, config: DiagnoseConfig) -> dict[str, list[Record]]:
    """task -> the evaluation records whose hidden states the t-SNE shows: the first
    `tsne_examples` of each evaluated task (`tsne_per="task"`), or the first `tsne_examples` of
    all of them in task order (`"total"`; later tasks may get none)."""
    left = config.tsne_examples
    chosen = {}
    for task in data.cell.eval_tasks:
        rows = data.records("test", task)[: config.tsne_examples if config.tsne_per == "task"
                                          else left]
        left -= len(rows)
        chosen[task] = rows
    return chosen


def _paper(loaded: LoadedRun) -> dict[str, dict[str, float]]:
    cell = loaded.cell
    return {
        task: dict(DIAGNOSTICS[key])
        for task in cell.eval_tasks
        if (key := (cell.backbone, task, cell.method.name)) in DIAGNOSTICS
    }


def diagnose(
    loaded: LoadedRun, data: SplitData, out: Path, config: DiagnoseConfig = DiagnoseConfig()
) -> dict[str, Any]:
    """Run every diagnostic on `data`, write `out`/diagnostics.json and the PNGs, return it."""
    cell, prepared = loaded.cell, loaded.prepared
    records = data.test()
    samples = to_samples(records, cell.method.image_twice, with_answer=False)
    has_latents = prepared.latents is not None
    metrics: dict[str, dict[str, Any]] = {}
    for name, generation in CONDITIONS.items():
        if generation.remove_latents and not has_latents:
            continue  # identical to its counterpart: filled in below
        metrics[name] = _score(data, generate_texts(prepared, samples, loaded.options, generation))
    if not has_latents:
        metrics["no_latents"] = metrics["standard"]
        metrics["bottleneck_no_latents"] = metrics["bottleneck"]
    baselines = {t: {"random": m["random_baseline"], "constant": m["constant_baseline"]}
                 for t, m in metrics["standard"]["tasks"].items()}

    out.mkdir(parents=True, exist_ok=True)
    gold = to_samples(records, cell.method.image_twice, with_answer=True)
    tsne_chosen = tsne_records(data, config)
    tsne_samples = to_samples([r for rows in tsne_chosen.values() for r in rows],
                              cell.method.image_twice, with_answer=False)
    features, kinds = _hidden_states(loaded, tsne_samples, config.tsne_points_per_kind,
                                     config.seed)
    per = (f"first {config.tsne_examples} of each task" if config.tsne_per == "task"
           else f"first {config.tsne_examples}")
    tsne_title = (f"t-SNE of final-layer hidden states, {len(tsne_samples)} examples ({per})\n"
                  f"{backbone_label(cell.backbone)}, {cell.method.label}")
    figures: dict[str, Any] = {
        "tsne": str(save_tsne(features, kinds, out / "tsne.png", tsne_title, config.seed)),
        "overlays": (_overlays(loaded, samples[: config.overlays], out) if has_latents else []),
    }
    result = {
        "run": str(loaded.run_dir),
        "backbone": cell.backbone,
        "method": cell.method.name,
        "tasks": list(cell.eval_tasks),
        "split": data.split,
        "limit": data.cell.limit,
        "n": len(records),
        "latents": prepared.latents.k if has_latents else None,
        "weights": str(loaded.weights) if loaded.weights else None,
        "accuracy": {name: _accuracy(metrics[name]) for name in CONDITIONS},
        "baselines": baselines,
        "pixel_invariance": _pixel_invariance(
            loaded, samples[: config.invariance_examples], config.seed
        ),
        "attention": _answer_attention(loaded, gold) if has_latents else None,
        "figures": figures,
        "tsne_examples": {task: len(rows) for task, rows in tsne_chosen.items()},
        "paper": _paper(loaded),
        "config": asdict(config),
    }
    (out / "diagnostics.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_summary(result: dict[str, Any]) -> str:
    """The printed summary: accuracies per condition (macro over tasks), the paper's beside."""
    paper = next(iter(result["paper"].values()), {}) if len(result["tasks"]) == 1 else {}
    tasks = ", ".join(task_label(t) for t in result["tasks"])
    lines = [
        f"Diagnostics: {backbone_label(result['backbone'])}, {result['method']}, {tasks}, "
        f"{result['split']} split, {result['n']} examples"
        + ("" if result["latents"] else " (no latents)"),
        f"{'condition':<30}{'accuracy':>10}{'paper':>8}",
    ]
    for name, label in LABELS.items():
        lines.append(f"{label:<30}{_fmt(result['accuracy'][name]['macro']):>10}"
                     f"{_fmt(paper.get(name)):>8}")
    base = result["baselines"]
    lines.append("no-image level: random " + ", ".join(_fmt(b["random"]) for b in base.values())
                 + "; best constant " + ", ".join(_fmt(b["constant"]) for b in base.values()))
    inv = result["pixel_invariance"]
    lines.append(f"bottleneck without latents, images replaced by noise: "
                 f"{inv['identical_answers']}/{inv['examples']} answers identical, "
                 f"max logit change {inv['max_logit_diff']:.3g} (must be 0)")
    if result["attention"] is not None:
        lines.append(f"{'answer->latent attention':<30}"
                     f"{_fmt(result['attention']['answer_to_latent'], 4):>10}"
                     f"{_fmt(paper.get('answer_to_latent_attention'), 3):>8}")
    figures = result["figures"]
    lines.append(f"figures: {figures['tsne']}"
                 + (f" and {len(figures['overlays'])} attention overlays" if figures["overlays"]
                    else ""))
    return "\n".join(lines)

