"""`harness doctor`: what a user checks on their own machine and checkpoint before GPU-days.

Owns `Check`, `run_doctor`, `format_checks` and `main`'s work for the `doctor` subcommand. Each
check prints one line, `ok` or `FAIL` with its reason (`skip` when an earlier failure left
nothing to check); any FAIL makes the command exit 1.

| check | what is verified |
|---|---|
| versions | python, torch, transformers, peft, accelerate at least what pyproject.toml requires |
| device | the device the options resolve to; bf16 support (CUDA) |
| attention | sdpa / flash_attention_2 / flex attention available; the chosen one must be |
| load | model and processor load from the options' source (offline: fails at once, naming the options) |
| latents | K latent ids land in unused embedding rows, collide with no special or model token |
| chat | the encoder's text is the processor's chat template (images in place, latents right before the end of the user turn) and the tokenizer's template renders the same text |
| pixel budget | the image tokens respect the budget, and a smaller budget gives fewer of them |
| bottleneck | answer logits bit-identical for two different images under the stage-1 mask with latents removed; under the causal mask (the control) they differ |
| steps | one LIVR stage-1 step and one direct-SFT step timed (median of `steps`), their ratio, peak memory |
| table 1 estimate | time and peak memory of `harness run --table 1` for this backbone, from those timings and the paper's split sizes |

The timed example is the first training example of `--task` in `--built`, or else a synthetic
two-image multiple-choice example (`--image-size`, default 640x480, the size the pixel-budget
facts are stated for).
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harness.config import Overrides, load_table
from harness.errors import ConfigError
from harness.methods import get_method
from harness.options import ModelOptions
from livr_core.configs import LatentConfig, TrainConfig

K = LatentConfig.k  # the paper's latent count, as LIVR trains with
MINIMUM_VERSIONS = {"transformers": "5.0", "peft": "0.21"}  # pyproject.toml's requirements
LIBRARIES = ("torch", "transformers", "peft", "accelerate", "safetensors", "huggingface_hub")
PROMPT = ("Which image is brighter?\n(A) the first image\n(B) the second image\n"
          "Answer with the option's letter from the given choices directly.")
STEP_TARGET = 1.10  # LIVR stage-1 step / SFT step that the step benchmark aims at


@dataclass
class Check:
    name: str
    status: str  # "ok", "FAIL" or "skip"
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


class CheckFailed(Exception):
    """A check's reason for FAIL (its message is the line's detail)."""


@dataclass
class _State:
    """What the checks share: the loaded backbone, its latents and the timed samples."""

    name: str
    options: ModelOptions
    steps: int  # timed optimizer steps per arm (after one warm-up step)
    samples: tuple[Any, Any] | None = None  # two examples differing only in their images
    backbone: Any = None
    latents: Any = None
    timings: dict[str, float] = field(default_factory=dict)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("+")[0].split(".")[:3] if p.isdigit())


def _versions(state: _State) -> Check:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    detail = f"python {platform.python_version()}, " + ", ".join(
        f"{k} {v or 'missing'}" for k, v in found.items())
    old = [f"{k} {found[k]} < {v}" for k, v in MINIMUM_VERSIONS.items()
           if found[k] is None or _version_tuple(found[k]) < _version_tuple(v)]
    missing = [k for k, v in found.items() if v is None]
    if old or missing:
        raise CheckFailed(f"{detail}; needs: {', '.join(old + missing)} (pip install -e .)")
    return Check("versions", "ok", detail, found)


def _device(state: _State) -> Check:
    import torch

    device = state.options.resolved_device()
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CheckFailed("device=cuda but CUDA is not available to torch "
                              f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})")
        props = torch.cuda.get_device_properties(device)
        bf16 = torch.cuda.is_bf16_supported()
        detail = (f"{props.name}, {props.total_memory / 2**30:.0f} GiB, "
                  f"bf16 {'yes' if bf16 else 'NO'}")
        if not bf16 and state.options.precision in ("auto", "bf16"):
            raise CheckFailed(f"{detail}: precision {state.options.precision} trains in bf16; "
                              "use --executor-opt precision=fp32 on this GPU")
        return Check("device", "ok", detail, {"device": props.name, "bf16": bf16})
    detail = (f"{device} ({torch.get_num_threads()} threads), no autocast: fine for checks and "
              "tiny models; the paper's runs need a GPU")
    return Check("device", "ok", detail, {"device": str(device)})


def _attention(state: _State) -> Check:
    import torch
    from transformers.utils import is_flash_attn_2_available

    available = {
        "sdpa": hasattr(torch.nn.functional, "scaled_dot_product_attention"),
        "flash_attention_2": is_flash_attn_2_available(),
        "flex": _importable("torch.nn.attention.flex_attention"),
        "eager": True,
    }
    detail = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in available.items() if k != "eager")
    chosen = state.options.attn_implementation
    if not available[chosen]:
        raise CheckFailed(f"{detail}; the chosen attn_implementation={chosen} is not available")
    return Check("attention", "ok", f"{detail}; using {chosen}", available)


def _importable(module: str) -> bool:
    import importlib

    try:
        importlib.import_module(module)
        return True
    except ImportError:
        return False


def _load(state: _State) -> Check:
    from harness.modeling import load_model

    start = time.perf_counter()
    state.backbone = load_model(state.name, state.options)
    seconds = time.perf_counter() - start
    model = state.backbone.model
    parameters = sum(p.numel() for p in model.parameters())
    from livr_core.backbones import get_backbone

    source = (state.options.source_for(state.name) or get_backbone(state.name).default_source
              or "code (a tiny test backbone)")
    detail = (f"{type(model).__name__}, {parameters / 1e6:,.1f}M parameters, {model.dtype}, "
              f"{type(state.backbone.processor.image_processor).__name__} from {source} "
              f"in {seconds:.1f} s")
    return Check("load", "ok", detail, {"parameters": parameters, "seconds": round(seconds, 3),
                                        "dtype": str(model.dtype)})


def _model_token_ids(model: Any) -> set[int]:
    from livr_core.backbones.base import unwrap

    config = unwrap(model).config
    ids = set()
    for part in (config, getattr(config, "text_config", None)):
        for key, value in (vars(part).items() if part is not None else ()):
            if key.endswith(("token_id", "token_index")) and isinstance(value, int):
                ids.add(value)
    return ids


def _latents(state: _State) -> Check:
    from livr_core.latents import add_latent_tokens

    backbone = state.backbone
    tokenizer = backbone.tokenizer
    taken = set(tokenizer.added_tokens_decoder) | set(tokenizer.all_special_ids)
    taken |= _model_token_ids(backbone.model)
    vocabulary = len(tokenizer)
    rows = backbone.model.get_input_embeddings().weight.shape[0]
    state.latents = add_latent_tokens(backbone, LatentConfig())
    ids = state.latents.ids
    clash = sorted(set(ids) & taken)
    if clash or min(ids) < vocabulary:
        raise CheckFailed(f"latent ids {ids[0]}..{ids[-1]} reuse existing tokens {clash}")
    grown = backbone.model.get_input_embeddings().weight.shape[0]
    where = (f"unused rows (matrix {rows} rows, tokenizer {vocabulary})" if grown == rows
             else f"new rows: the matrix grew from {rows} to {grown} rows (no spare rows)")
    return Check("latents", "ok", f"{K} ids {ids[0]}..{ids[-1]} in {where}, no special token",
                 {"ids": list(ids), "rows": rows, "grown_to": grown})


def _encoder(state: _State, latents: bool = True) -> Any:
    from livr_core.encoding import Encoder

    return Encoder(state.backbone, state.latents if latents else None)


def _chat(state: _State) -> Check:
    from livr_core.token_types import TokenType

    encoder = _encoder(state)
    sample = state.samples[0]
    encoded = encoder.encode(sample, with_answer=False)
    messages = encoder.messages(sample)
    rendered = state.backbone.processor.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True)
    problems = []
    image_runs = int(((encoded.token_types == TokenType.IMAGE).int().diff() == 1).sum())
    image_runs += int(encoded.token_types[0] == TokenType.IMAGE)
    if image_runs != len(sample.images):
        problems.append(f"{image_runs} image placeholders for {len(sample.images)} images")
    latent = (encoded.token_types == TokenType.LATENT).nonzero()[:, 0]
    end = encoder.end_of_turn_id
    if len(latent) != K or int(latent[-1] - latent[0]) != K - 1 or int(
            encoded.input_ids[int(latent[-1]) + 1]) != end:
        problems.append("the latents are not contiguous right before the end of the user turn")
    template = getattr(state.backbone.tokenizer, "chat_template", None)
    if template:
        own = state.backbone.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True)
        if own != rendered:
            at = next(i for i, (a, b) in enumerate(zip(own + "\0", rendered + "\0")) if a != b)
            problems.append(f"the tokenizer's chat template renders another text (from character "
                            f"{at}: {own[at:at + 40]!r} vs {rendered[at:at + 40]!r})")
    if problems:
        raise CheckFailed("; ".join(problems))
    system = rendered.split("<|im_start|>user", 1)[0] if "<|im_start|>user" in rendered else ""
    prefix = f"; the template adds the system turn {system.strip()!r}" if system.strip() else ""
    detail = (f"{len(encoded.input_ids)} prompt tokens, {len(sample.images)} images in place, "
              f"latents before the end of the user turn{prefix}")
    return Check("chat", "ok", detail, {"prompt_tokens": len(encoded.input_ids),
                                        "rendered": rendered})


def _image_tokens(processor: Any, image: Any) -> int | None:
    out = processor.image_processor(images=[image], return_tensors="pt")
    grid = out.get("image_grid_thw")
    if grid is None:
        return None
    merge = getattr(processor.image_processor, "merge_size", 2)
    return int(grid.prod()) // merge**2


def _processor_with_budget(state: _State, max_pixels: int) -> Any:
    from livr_core.backbones import get_backbone, load_backbone
    from livr_core.backbones.qwen import load_pil_processor
    from livr_core.configs import LoadOptions

    spec = get_backbone(state.name)
    budget = LoadOptions(min_pixels=min(max_pixels, state.options.min_pixels or max_pixels),
                         max_pixels=max_pixels)
    source = state.options.source_for(state.name) or spec.default_source
    if source is None:  # a backbone built in code: build it again with the budget
        return load_backbone(state.name, budget).processor
    return load_pil_processor(spec.resolve_source(source), budget,
                              trust_remote_code=state.options.trust_remote_code)


def _pixel_budget(state: _State) -> Check:
    from PIL import Image

    processor = state.backbone.processor
    image = Image.new("RGB", (640, 480), (90, 140, 200))
    tokens = _image_tokens(processor, image)
    if tokens is None:
        return Check("pixel budget", "ok", "fixed-size image processor: no pixel budget applies")
    size = processor.image_processor.size
    pixels_per_token = (processor.image_processor.patch_size
                        * processor.image_processor.merge_size) ** 2
    cap = size["longest_edge"]
    if tokens * pixels_per_token > cap:
        raise CheckFailed(f"a 640x480 image gives {tokens} tokens = {tokens * pixels_per_token} "
                          f"pixels, over the budget of {cap}")
    smaller = max(4 * pixels_per_token, min(cap, 640 * 480) // 4)
    fewer = _image_tokens(_processor_with_budget(state, smaller), image)
    if fewer is None or fewer >= tokens or fewer * pixels_per_token > smaller:
        raise CheckFailed(f"max_pixels={smaller} gives {fewer} image tokens for a 640x480 image "
                          f"(the loaded budget gives {tokens}): the budget is not applied")
    detail = (f"640x480 -> {tokens} tokens under max_pixels={cap}, {fewer} under "
              f"max_pixels={smaller}")
    return Check("pixel budget", "ok", detail, {"tokens": tokens, "budget": cap,
                                                "smaller_budget": smaller, "fewer": fewer})


def _answer_logits(state: _State, encoder: Any, variant: Any) -> list[Any]:

    from livr_core.inference import eval_mode
    from livr_core.model_inputs import forward_inputs
    from livr_core.token_types import TokenType

    model, device = state.backbone.model, state.options.resolved_device()
    out = []
    with eval_mode(model), state.options.autocast():
        for sample in state.samples:
            batch = encoder([sample]).to(device)
            logits = model(**forward_inputs(model, state.backbone.adapter, batch, variant)).logits
            out.append(logits[0][batch.token_types[0] == TokenType.ANSWER].float().cpu())
    return out


def _bottleneck(state: _State) -> Check:
    import torch

    from livr_core.configs import MaskVariant

    plain = _encoder(state).without_latents()
    first, second = _answer_logits(state, plain, MaskVariant.BOTTLENECK)
    difference = float((first - second).abs().max())
    control_a, control_b = _answer_logits(state, plain, MaskVariant.CAUSAL)
    control = float((control_a - control_b).abs().max())
    if not torch.equal(first, second):
        raise CheckFailed(f"answer logits differ by up to {difference:.3g} between two images "
                          "with latents removed under the stage-1 mask: the image leaks past the "
                          "bottleneck on this model / attention kernel")
    if control == 0.0:
        raise CheckFailed("the control pair (causal mask) gives identical logits too: the two "
                          "images do not reach the model, so the check proves nothing")
    return Check("bottleneck", "ok", f"answer logits bit-identical for two images with latents "
                 f"removed; the causal control differs by {control:.3g}",
                 {"max_difference": difference, "control_difference": control})


def _timed_steps(state: _State, model: Any, encoder: Any, variant: Any) -> dict[str, float]:
    import torch

    from livr_core.lora import param_groups
    from livr_core.model_inputs import forward_inputs

    device = state.options.resolved_device()
    cuda = device.type == "cuda"
    optimizer = torch.optim.AdamW(param_groups(model, TrainConfig.weight_decay), lr=TrainConfig.lr)
    batch = encoder([state.samples[0]]).to(device)
    model.train()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    times, loss = [], None
    for step in range(1 + state.steps):  # the first warms kernels and the allocator
        start = time.perf_counter()
        with state.options.autocast():
            loss = model(**forward_inputs(model, state.backbone.adapter, batch, variant),
                         labels=batch.labels, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - start)
    model.eval()
    if not torch.isfinite(loss):
        raise CheckFailed(f"the loss is {float(loss.detach())}")
    peak = torch.cuda.max_memory_allocated(device) if cuda else None
    return {"seconds": statistics.median(times), "tokens": int(batch.attention_mask.sum()),
            "peak_bytes": peak, "loss": float(loss.detach())}


def _steps(state: _State) -> Check:
    from livr_core.configs import MaskVariant
    from livr_core.lora import apply_finetuning

    backbone = state.backbone
    sft = apply_finetuning(backbone, None)  # direct SFT: LoRA, no latents, causal mask
    sft_step = _timed_steps(state, sft, _encoder(state, latents=False), MaskVariant.CAUSAL)
    backbone.model = sft.unload()  # the base model again, for LIVR's own wrapping
    livr = apply_finetuning(backbone, state.latents)
    livr_step = _timed_steps(state, livr, _encoder(state), MaskVariant.BOTTLENECK)
    state.timings.update(livr=livr_step["seconds"], sft=sft_step["seconds"],
                         peak=max(livr_step["peak_bytes"] or 0, sft_step["peak_bytes"] or 0))
    state.backbone = replace(backbone, model=livr)
    ratio = livr_step["seconds"] / sft_step["seconds"]

    def memory(step: dict[str, Any]) -> str:
        return f"peak {step['peak_bytes'] / 2**30:.2f} GiB" if step["peak_bytes"] else "CPU"

    detail = (f"LIVR stage 1 {livr_step['seconds']:.3f} s ({livr_step['tokens']} tokens, "
              f"{memory(livr_step)}), SFT {sft_step['seconds']:.3f} s ({sft_step['tokens']} "
              f"tokens, {memory(sft_step)}), ratio {ratio:.2f} (target <= {STEP_TARGET})")
    return Check("steps", "ok", detail, {"livr": livr_step, "sft": sft_step,
                                         "ratio": round(ratio, 3)})


def _generation_seconds(state: _State) -> float:
    """Seconds per example of batched greedy answers (untrained: every step is decoded)."""
    from harness.modeling import Prepared, generate_answers

    method = get_method("livr")
    prepared = Prepared(state.backbone, state.latents, _encoder(state), state.backbone.model,
                        method)
    samples = [replace(state.samples[0], answer=None, id=str(i))
               for i in range(state.options.batch_size)]
    start = time.perf_counter()
    generate_answers(prepared, samples, state.options)
    return (time.perf_counter() - start) / len(samples)


def _estimate(state: _State) -> Check:
    from builders.registry import load_registry

    per_example = _generation_seconds(state)
    table = load_table("1", Overrides(backbones=(state.name,)))
    registry = load_registry()
    seconds, cells = 0.0, 0
    for task in table.tasks:
        sizes = registry.resolve(task).sizes
        for method in table.methods.values():
            cells += 1
            evaluated = sizes["test"]
            if method.trained:
                step = state.timings["livr" if method.latents else "sft"]
                seconds += method.total_epochs * sizes["train"] * step
                if method.checkpoint == "best":
                    evaluated += method.total_epochs * sizes["val"]
            seconds += evaluated * per_example
    peak = state.timings["peak"]
    memory = f", peak memory {peak / 2**30:.1f} GiB" if peak else ""
    detail = (f"{cells} cells: about {seconds / 3600:.1f} h on this device{memory} (paper split "
              f"sizes; train examples at the timed step's cost, {per_example:.2f} s per "
              "generated answer)")
    return Check("table 1 estimate", "ok", detail,
                 {"cells": cells, "hours": round(seconds / 3600, 2), "peak_bytes": peak or None,
                  "answer_seconds": round(per_example, 4)})


CHECKS: tuple[tuple[str, Callable[[_State], Check], bool], ...] = (
    # (name, check, needs the loaded model)
    ("versions", _versions, False),
    ("device", _device, False),
    ("attention", _attention, False),
    ("load", _load, False),
    ("latents", _latents, True),
    ("chat", _chat, True),
    ("pixel budget", _pixel_budget, True),
    ("bottleneck", _bottleneck, True),
    ("steps", _steps, True),
    ("table 1 estimate", _estimate, True),
)


def example_samples(
    task: str | None, built: Path | None, image_size: tuple[int, int]
) -> tuple[Any, Any]:
    """Two examples that differ only in their images: the first training example of `task`
    (or a synthetic two-image one) and the same with random images of the same sizes."""
    import numpy as np
    from PIL import Image

    from livr_core.encoding import Sample

    if task is not None:
        from builders.io import iter_records, split_dir
        from harness.samples import to_samples

        record = next(iter_records(split_dir(built or Path("built"), task, "train")))
        sample = to_samples([record])[0]
    else:
        rng = np.random.default_rng(0)
        width, height = image_size
        images = [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
                  for _ in range(2)]
        sample = Sample(images, PROMPT, "(A)", "doctor")
    rng = np.random.default_rng(1)
    other = replace(sample, images=[
        Image.fromarray(rng.integers(0, 256, (im.height, im.width, 3), dtype=np.uint8))
        for im in sample.images], id=f"{sample.id}-other")
    return sample, other


def run_doctor(
    backbone: str,
    options: ModelOptions,
    task: str | None = None,
    built: Path | None = None,
    steps: int = 3,
    image_size: tuple[int, int] = (640, 480),
    on_check: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Run every check in order; a failing check never stops the others that can still run."""
    state = _State(backbone, options, steps)
    results: list[Check] = []
    loaded = True
    for name, check, needs_model in CHECKS:
        if needs_model and not loaded:
            result = Check(name, "skip", "the model did not load")
        else:
            try:
                if needs_model and state.samples is None:
                    state.samples = example_samples(task, built, image_size)
                result = check(state)
            except Exception as exc:  # noqa: BLE001 - a doctor reports, it does not crash
                reason = str(exc) if isinstance(exc, CheckFailed | ConfigError) else (
                    f"{type(exc).__name__}: {exc}")
                result = Check(name, "FAIL", reason)
        if name == "load" and result.status != "ok":
            loaded = False
        results.append(result)
        if on_check is not None:
            on_check(result)
    return results


def format_check(check: Check) -> str:
    return f"{check.status:<5} {check.name}: {check.detail}"


def report(checks: Sequence[Check], backbone: str, options: ModelOptions) -> dict[str, Any]:
    """The JSON form (`--json`): every check with its data, and what failed."""
    failed = [c.name for c in checks if c.status == "FAIL"]
    return {
        "backbone": backbone,
        "source": options.source_for(backbone),
        "device": str(options.resolved_device()),
        "checks": [asdict(c) for c in checks],
        "failed": failed,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(
    backbone: str,
    options: ModelOptions,
    task: str | None,
    built: Path | None,
    steps: int,
    image_size: tuple[int, int],
    json_path: Path | None,
) -> int:
    """Print each check as it finishes; exit 1 on any FAIL."""
    print(f"harness doctor: {backbone} on {options.resolved_device()}", flush=True)
    checks = run_doctor(backbone, options, task, built, steps, image_size,
                        on_check=lambda c: print(format_check(c), flush=True))
    result = report(checks, backbone, options)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    failed = result["failed"]
    print(f"{len(failed)} FAIL: {', '.join(failed)}" if failed else "all checks ok")
    return 1 if failed else 0
