"""The learning-rate schedule of one training stage: linear warm-up, then cosine decay to zero.

Owns `warmup_steps`, `lr_multiplier`, `lr_at`, `stage_scheduler`, `micro_batches_per_epoch`,
`updates_per_epoch`, `stage_warnings` and `schedule_warnings` (every stage of a `TrainConfig`). The pure
functions are the schedule; the scheduler is a `LambdaLR` over `lr_multiplier`, so its state is
just a step counter and restores exactly on resume. LIVR restarts the schedule for each stage: the
trainer builds a fresh scheduler (and optimizer) per stage, each with the stage's own step count.
torch is imported only by `stage_scheduler`, so planning (`harness run --dry-run`) can call
`stage_warnings` without loading it.

The curve is the Hugging Face `get_cosine_schedule_with_warmup` one (which the paper's setup,
a transformers-based fine-tuning stack, uses): warm-up over ceil(ratio x total) steps, with the
multiplier applied to update `step` (0-based) being step / warmup during warm-up (so the first
update has lr 0, as in Hugging Face), then 0.5 (1 + cos(pi progress)) with progress going from 0
at the end of warm-up to 1 at `total`.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch.optim.lr_scheduler import LambdaLR

    from livr_core.configs import TrainConfig


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    """Warm-up length: ceil(ratio x total), as Hugging Face's `get_warmup_steps`."""
    return math.ceil(total_steps * warmup_ratio)


def lr_multiplier(step: int, *, total_steps: int, warmup_ratio: float) -> float:
    """The factor on the base learning rate for optimizer update `step` (0-based)."""
    warmup = warmup_steps(total_steps, warmup_ratio)
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total_steps - warmup)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def lr_at(step: int, *, base_lr: float, total_steps: int, warmup_ratio: float) -> float:
    """The learning rate of optimizer update `step` (0-based) in a stage of `total_steps`."""
    return base_lr * lr_multiplier(step, total_steps=total_steps, warmup_ratio=warmup_ratio)


def stage_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float
) -> LambdaLR:
    """A fresh warm-up + cosine scheduler for one stage (call `.step()` after each update)."""
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(
        optimizer, partial(lr_multiplier, total_steps=total_steps, warmup_ratio=warmup_ratio)
    )


def micro_batches_per_epoch(num_samples: int, batch_size: int, processes: int = 1) -> int:
    """Micro-batches each process runs per epoch (the last one may be short)."""
    return math.ceil(math.ceil(num_samples / batch_size) / processes)


def updates_per_epoch(
    num_samples: int, batch_size: int, accumulation: int, processes: int = 1
) -> int:
    """Optimizer updates per epoch: accumulation windows never span epochs (a short last one)."""
    return math.ceil(micro_batches_per_epoch(num_samples, batch_size, processes) / accumulation)


def stage_warnings(stage: int, updates: int, warmup_ratio: float) -> list[str]:
    """What is wrong with a stage of `updates` optimizer updates under this schedule, if anything.

    Two cases make a short run (a smoke test, `--limit`) silently train less than it seems:
    * one update: warm-up starts at learning rate 0, so every update of the stage is at lr 0
      and the stage changes no weight;
    * fewer than 1 / ratio updates: the warm-up, at least one update long, is more than its
      share of the stage (a 5% warm-up needs 20 updates to be 5%), and its first update is at
      lr 0.
    `stage` counts from 1, as the messages do."""
    warmup = warmup_steps(updates, warmup_ratio)
    if updates == 0 or warmup == 0:
        return []
    if all(lr_multiplier(step, total_steps=updates, warmup_ratio=warmup_ratio) == 0.0
           for step in range(updates)):
        message = (
            f"stage {stage}: all {updates} update(s) happen at learning rate 0 (the start of the "
            "linear warm-up), so this stage trains nothing; give it more examples or epochs (an "
            "update is per_device_batch_size x grad_accumulation examples)"
        )
        return [message]
    needed = math.ceil(1 / warmup_ratio)
    if updates < needed:
        message = (
            f"stage {stage}: {updates} updates, fewer than the {needed} a {warmup_ratio:.0%} "
            f"warm-up needs: {warmup} of them ({warmup / updates:.0%}) are warm-up and the first "
            "is at learning rate 0"
        )
        return [message]
    return []


def schedule_warnings(config: TrainConfig, num_samples: int, processes: int = 1) -> list[str]:
    """`stage_warnings` of every stage a run of `config` on `num_samples` examples trains."""
    per_epoch = updates_per_epoch(
        num_samples, config.per_device_batch_size, config.grad_accumulation, processes
    )
    return [
        warning
        for stage, epochs in enumerate(config.epochs)
        for warning in stage_warnings(stage + 1, per_epoch * epochs, config.warmup_ratio)
    ]
