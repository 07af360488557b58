"""The learning-rate schedule of one training stage: linear warm-up, then cosine decay to zero.

Owns `warmup_steps`, `lr_multiplier`, `lr_at` and `stage_scheduler`. The pure functions are the
schedule; the scheduler is a `LambdaLR` over `lr_multiplier`, so its state is just a step counter
and restores exactly on resume. LIVR restarts the schedule for each stage: the trainer builds a
fresh scheduler (and optimizer) per stage, each with the stage's own step count.

The curve is the Hugging Face `get_cosine_schedule_with_warmup` one (which the paper's setup,
a transformers-based fine-tuning stack, uses): warm-up over ceil(ratio x total) steps, with the
multiplier applied to update `step` (0-based) being step / warmup during warm-up (so the first
update has lr 0, as in Hugging Face), then 0.5 (1 + cos(pi progress)) with progress going from 0
at the end of warm-up to 1 at `total`.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch.optim.lr_scheduler import LambdaLR


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
    return LambdaLR(
        optimizer, partial(lr_multiplier, total_steps=total_steps, warmup_ratio=warmup_ratio)
    )
