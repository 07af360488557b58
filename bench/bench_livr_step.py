"""One optimizer step of LIVR stage 1 against direct SFT on the same backbone; prints JSON.

Each arm trains LoRA (LIVR: plus the K latent rows) with AdamW over per-device batch 1 x
accumulation 8, on the same pre-encoded two-image samples (~1-2k tokens), timing forward +
backward of 8 micro-batches (mask building and position ids included) plus the optimizer step:

* `livr_stage1_sdpa_bool`: latents in the prompt, 4D bool bottleneck mask + explicit M-RoPE
  positions, sdpa (masked: no flash kernel, and K/V are expanded for GQA);
* `livr_stage2_sdpa_causal`: the same model and inputs under the model's own 2D causal path,
  separating the price of the mask from that of the K extra tokens and trainable rows;
* `sft_sdpa_causal`: direct SFT, no latents, 2D causal path (sdpa may use its flash kernel);
* `--real-arch` only: `sft_flash_attention_2` when flash-attn is installed, and
  `livr_stage1_flex_blockmask`: flex attention with a BlockMask built from the same mask rules,
  registered under a custom attention name for the language model only (transformers refuses
  "flex_attention" for Qwen-VL), with its loss checked against the sdpa arm.

Arms are timed in interleaved rounds (one step of each arm per round) so load drift on a shared
machine hits them alike; the JSON reports every step time, the median and the fastest, tokens/s
(at the median), each arm's ratio to direct SFT by median and by fastest step (target for
stage 1: <= 1.10) and, on CUDA, each arm's peak allocated memory over its steps.

    python bench/bench_livr_step.py                  # tiny Qwen2.5-VL enlarged, CPU, fp32
    python bench/bench_livr_step.py --real-arch      # Qwen2.5-VL-3B as published, random bf16, CUDA
    python bench/bench_livr_step.py --real-arch --backbone qwen3-vl-4b
    python bench/bench_livr_step.py --real-arch --device cpu --widths ci --layers 2   # smoke

`--real-arch` builds the published architecture from the real-configuration directory of the
backbone (`livr_core.realconfig`: published config.json, real tokenizer, chat template and image
processor; `--widths real` and all published layers by default) with random bf16 weights drawn
on the device (no download, no weights on disk), so sequence shapes and costs are the real
model's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from livr_core.backbones.base import Backbone
from livr_core.backbones.qwen import QwenVLAdapter
from livr_core.backbones.tiny import TinySize, build_tiny_qwen2_5_vl
from livr_core.configs import RULES, EncodingConfig, LatentConfig, LoadOptions, MaskVariant
from livr_core.encoding import Batch, Encoder, Sample
from livr_core.latents import add_latent_tokens
from livr_core.lora import apply_finetuning, param_groups
from livr_core.model_inputs import forward_inputs, position_ids
from livr_core.token_types import TokenType

ACCUMULATION = 8  # paper: per-device batch 1 x accumulation 8
K = 16  # paper default
FLEX = "livr_flex"  # flex attention registered under our own name (see _register_flex)
FLASH = "flash_attention_2"
ADAPTER = QwenVLAdapter()
TINY_LAYERS = 4  # default depth of the enlarged tiny backbone

@dataclass
class Arm:
    name: str
    model: nn.Module
    batches: list[Batch]
    make_inputs: Callable[[nn.Module, Batch], dict[str, Any]]  # (arm's model, batch) -> kwargs
    attn: str  # the language model's attention implementation during this arm
    optimizer: torch.optim.Optimizer | None = None
    peak_bytes: int = 0  # CUDA: the most memory allocated during any of its steps


def _images(seed: int, width: int, height: int) -> list[Image.Image]:
    rng = np.random.RandomState(seed)
    return [
        Image.fromarray(rng.randint(0, 256, (height, width, 3), dtype=np.uint8)) for _ in range(2)
    ]


def _samples(n: int, width: int, height: int) -> list[Sample]:
    prompt = "Which image is brighter? (A) the first image (B) the second image"
    return [Sample(_images(i, width, height), prompt, "(B)", f"b{i}") for i in range(n)]


def _tiny_backbone(size: TinySize, options: LoadOptions) -> Backbone:
    model, processor = build_tiny_qwen2_5_vl(options, size)
    return Backbone("tiny-qwen2.5-vl-enlarged", model, processor, QwenVLAdapter())


def _real_arch_backbone(args: argparse.Namespace, device: str, directory: Path) -> Backbone:
    """The published architecture of `args.backbone` with random bf16 weights made on `device`,
    and its real processor (`livr_core.realconfig`, written without weights to `directory`)."""
    import transformers

    from livr_core.backbones import get_backbone
    from livr_core.backbones.qwen import load_pil_processor
    from livr_core.realconfig.checkpoints import write_checkpoint
    from livr_core.realconfig.qwen import QWEN_CHECKPOINTS

    write_checkpoint(args.backbone, directory, widths=args.widths, layers=args.layers,
                     weights=False)
    config = transformers.AutoConfig.from_pretrained(directory)
    model_class = getattr(transformers, QWEN_CHECKPOINTS[args.backbone].model_class)
    with torch.device(device), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = model_class._from_config(config, dtype=torch.bfloat16)
    model.set_attn_implementation("sdpa")
    processor = load_pil_processor(str(directory), LoadOptions())
    name = f"{args.backbone} ({args.widths} widths, {config.get_text_config().num_hidden_layers} layers)"
    return Backbone(name, model.eval(), processor, get_backbone(args.backbone).adapter)


def _prepare(backbone: Backbone, latents: bool, samples: list[Sample], device: str):
    tokens = add_latent_tokens(backbone, LatentConfig(k=K)) if latents else None
    encoder = Encoder(backbone, tokens, EncodingConfig(max_length=16384))
    model = apply_finetuning(backbone, tokens).to(device)
    model.train()
    return model, [encoder([s]).to(device) for s in samples]


def _register_flex() -> None:
    from transformers import AttentionInterface
    from transformers.integrations.flex_attention import flex_attention_forward

    AttentionInterface.register(FLEX, flex_attention_forward)


def _block_mask(batch: Batch, variant: MaskVariant):
    """The variant's rules as a flex BlockMask: causal & key padding & not barred, or diagonal."""
    from torch.nn.attention.flex_attention import create_block_mask

    valid = batch.attention_mask.bool()
    is_type = {t: batch.token_types == t for t in TokenType}  # bool lookups compile on CPU too
    barred = RULES[variant].barred_pairs()

    def mask_mod(b, h, q, kv):
        allowed = (kv <= q) & valid[b, kv]
        for query_type, key_type in barred:
            allowed = allowed & ~(is_type[query_type][b, q] & is_type[key_type][b, kv])
        return allowed | (q == kv)

    batch_size, length = batch.input_ids.shape
    return create_block_mask(
        mask_mod, batch_size, None, length, length, device=batch.input_ids.device
    )


def _dense(variant: MaskVariant) -> Callable[[nn.Module, Batch], dict[str, Any]]:
    """The trainer's inputs: `forward_inputs` under `variant` (4D bool mask unless CAUSAL)."""
    return lambda model, batch: forward_inputs(model, ADAPTER, batch, variant)


def _flex_inputs(model: nn.Module, batch: Batch) -> dict[str, Any]:
    inputs = forward_inputs(model, ADAPTER, batch, MaskVariant.CAUSAL)  # ids + image tensors
    inputs["attention_mask"] = _block_mask(batch, MaskVariant.BOTTLENECK)
    inputs["position_ids"] = position_ids(model, ADAPTER, batch)
    return inputs


def _set_attn(model: nn.Module, attn: str) -> None:
    model.get_base_model().set_attn_implementation({"text_config": attn, "vision_config": "sdpa"})


def _step(arm: Arm, synchronize: Callable[[], None]) -> float:
    """One optimizer step (ACCUMULATION micro-batches); returns seconds."""
    _set_attn(arm.model, arm.attn)
    synchronize()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for batch in arm.batches:
        inputs = arm.make_inputs(arm.model, batch)
        loss = arm.model(**inputs, labels=batch.labels, use_cache=False).loss
        (loss / len(arm.batches)).backward()
    arm.optimizer.step()
    arm.optimizer.zero_grad(set_to_none=True)
    synchronize()
    if torch.cuda.is_available():
        arm.peak_bytes = max(arm.peak_bytes, torch.cuda.max_memory_allocated())
    return time.perf_counter() - start


def _first_loss(arm: Arm) -> float:
    """The arm's loss on its first batch without dropout (to check arms compute the same)."""
    _set_attn(arm.model, arm.attn)
    arm.model.eval()
    with torch.no_grad():
        batch = arm.batches[0]
        loss = float(arm.model(**arm.make_inputs(arm.model, batch), labels=batch.labels).loss)
    arm.model.train()
    return loss


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = args.device
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    samples = _samples(ACCUMULATION, args.image_width, args.image_height)
    if args.real_arch:
        with tempfile.TemporaryDirectory() as directory:
            backbones = [_real_arch_backbone(args, device, Path(directory)) for _ in range(2)]
    else:
        size = TinySize(
            hidden=args.hidden,
            intermediate=4 * args.hidden,
            layers=args.layers or TINY_LAYERS,
            heads=args.hidden // 64,
            kv_heads=max(1, args.hidden // 256),
            vision_hidden=64,
            merged_tokens=1024,
        )
        backbones = [_tiny_backbone(size, LoadOptions(device=device)) for _ in range(2)]
    livr_model, livr_batches = _prepare(backbones[0], True, samples, device)
    sft_model, sft_batches = _prepare(backbones[1], False, samples, device)
    arms = [
        Arm("sft_sdpa_causal", sft_model, sft_batches, _dense(MaskVariant.CAUSAL), "sdpa"),
        Arm(
            "livr_stage1_sdpa_bool",
            livr_model,
            livr_batches,
            _dense(MaskVariant.BOTTLENECK),
            "sdpa",
        ),
        Arm(
            "livr_stage2_sdpa_causal", livr_model, livr_batches, _dense(MaskVariant.CAUSAL), "sdpa"
        ),
    ]
    notes: dict[str, str] = {}
    if device == "cuda":
        from transformers.utils import is_flash_attn_2_available

        if is_flash_attn_2_available():
            sft = arms[0]
            arms.append(
                Arm("sft_flash_attention_2", sft.model, sft.batches, sft.make_inputs, FLASH)
            )
        else:
            notes["sft_flash_attention_2"] = "flash-attn is not installed"
    if args.flex if args.flex is not None else args.real_arch:
        _register_flex()
        flex = Arm("livr_stage1_flex_blockmask", livr_model, livr_batches, _flex_inputs, FLEX)
        try:
            reference = _first_loss(arms[1])
            notes["flex_loss_minus_sdpa_loss"] = f"{_first_loss(flex) - reference:.3e}"
            arms.append(flex)
        except Exception as error:  # noqa: BLE001 - flex is optional: report why it failed
            notes["livr_stage1_flex_blockmask"] = f"{type(error).__name__}: {error}"[:300]
    optional = ("sft_flash_attention_2", "livr_stage1_flex_blockmask")
    for arm in list(arms):  # each arm its own optimizer state, like a separate run
        arm.optimizer = torch.optim.AdamW(param_groups(arm.model, 0.01), lr=1e-4)
        try:
            _step(arm, synchronize)  # warm-up: allocator, kernels, flex compilation
        except Exception as error:  # an optional kernel: its failure is reported, not fatal
            if arm.name not in optional:
                raise
            notes[arm.name] = f"{type(error).__name__}: {error}"[:300]
            arms.remove(arm)
            arm.model.zero_grad(set_to_none=True)
        arm.peak_bytes = 0
    times: dict[str, list[float]] = {arm.name: [] for arm in arms}
    for _ in range(args.steps):
        for arm in arms:
            times[arm.name].append(_step(arm, synchronize))
    baseline = times["sft_sdpa_causal"]
    report: dict[str, Any] = {}
    for arm in arms:
        median, best = statistics.median(times[arm.name]), min(times[arm.name])
        tokens = sum(int(b.attention_mask.sum()) for b in arm.batches)
        report[arm.name] = {
            "step_seconds_median": round(median, 4),
            "step_seconds_min": round(best, 4),
            "step_seconds_all": [round(t, 3) for t in times[arm.name]],
            "tokens_per_step": tokens,
            "tokens_per_second": round(tokens / median, 1),
            "ratio_to_sft_median": round(median / statistics.median(baseline), 3),
            # the fastest step is the least disturbed by other load on a shared machine
            "ratio_to_sft_min": round(best / min(baseline), 3),
            "peak_memory_gib": round(arm.peak_bytes / 2**30, 2) if arm.peak_bytes else None,
        }
    lengths = [int(b.attention_mask.sum()) for b in livr_batches]
    cpu = f"cpu x{torch.get_num_threads()} threads"
    return {
        "benchmark": "livr_step",
        "backbone": backbones[0].name,
        "device": torch.cuda.get_device_name() if device == "cuda" else cpu,
        "dtype": str(next(livr_model.parameters()).dtype),
        "batch": f"1 x accumulation {ACCUMULATION}",
        "k_latents": K,
        "livr_sequence_lengths": [min(lengths), max(lengths)],
        "image_tokens_per_sample": int((livr_batches[0].token_types == TokenType.IMAGE).sum()),
        "timed_steps_per_arm": args.steps,
        "arms": report,
        "livr_stage1_over_sft_median": report["livr_stage1_sdpa_bool"]["ratio_to_sft_median"],
        "livr_stage1_over_sft_min": report["livr_stage1_sdpa_bool"]["ratio_to_sft_min"],
        "target_livr_stage1_over_sft": 1.10,
        "notes": notes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--real-arch", action="store_true",
                        help="the published architecture of --backbone (default on CUDA)")
    parser.add_argument("--backbone", default="qwen2.5-vl-3b",
                        choices=("qwen2.5-vl-3b", "qwen2.5-vl-7b", "qwen3-vl-4b"),
                        help="--real-arch: which published architecture")
    parser.add_argument("--widths", default="real", choices=("real", "ci"),
                        help="--real-arch: published widths, or the CI variant's (smoke)")
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps per arm")
    parser.add_argument("--device", help="cpu or cuda (default: cuda with --real-arch, else cpu)")
    parser.add_argument("--hidden", type=int, default=256, help="tiny backbone width")
    parser.add_argument("--layers", type=int,
                        help="depth: tiny backbone (default 4); --real-arch: decoder layers and "
                             "vision blocks (default: published)")
    parser.add_argument("--image-width", type=int, default=812, help="two images per sample")
    parser.add_argument("--image-height", type=int, default=532)
    parser.add_argument(
        "--flex",
        action=argparse.BooleanOptionalAction,
        help="add the flex-attention arm (default: with --real-arch only; on CPU it compiles ~30 s)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.device = args.device or ("cuda" if args.real_arch else "cpu")
    if args.device == "cuda" and not torch.cuda.is_available():
        error = ("CUDA is not available; --real-arch on a CPU needs --device cpu (with --widths "
                 "ci --layers 2 to finish in minutes)")
        print(json.dumps({"benchmark": "livr_step", "error": error}))
        return 2
    print(json.dumps(run(args), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
