"""The per-stage learning-rate schedule: 5% linear warm-up, then cosine to zero."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from transformers import get_cosine_schedule_with_warmup

from livr_core.schedule import lr_at, stage_scheduler, warmup_steps

BASE = 1e-4


def _formula(step: int, total: int, ratio: float) -> float:
    warmup = math.ceil(ratio * total)
    if step < warmup:
        return BASE * step / warmup
    return BASE * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


@pytest.mark.parametrize("total", [500, 125, 7])  # 4 epochs x 125 updates; a short stage
def test_lr_follows_warmup_then_cosine(total: int) -> None:
    curve = [lr_at(s, base_lr=BASE, total_steps=total, warmup_ratio=0.05) for s in range(total)]
    assert curve == pytest.approx([_formula(s, total, 0.05) for s in range(total)], abs=1e-15)
    warmup = warmup_steps(total, 0.05)
    assert warmup == math.ceil(0.05 * total)
    assert curve[0] == 0.0 and max(curve) == pytest.approx(BASE)
    assert curve[warmup] == pytest.approx(BASE)  # the peak right after warm-up
    assert all(a <= b for a, b in itertools.pairwise(curve[: warmup + 1]))  # rising
    assert all(a >= b for a, b in itertools.pairwise(curve[warmup:]))  # then falling
    assert lr_at(total, base_lr=BASE, total_steps=total, warmup_ratio=0.05) == 0.0


def test_scheduler_matches_hugging_face_and_restores_from_its_state() -> None:
    total = 40
    params = [torch.nn.Parameter(torch.zeros(1))]
    ours_opt, hf_opt = torch.optim.AdamW(params, lr=BASE), torch.optim.AdamW(params, lr=BASE)
    ours = stage_scheduler(ours_opt, total, 0.05)
    hf = get_cosine_schedule_with_warmup(hf_opt, math.ceil(0.05 * total), total)
    seen = []
    for step in range(total):
        assert ours_opt.param_groups[0]["lr"] == pytest.approx(hf_opt.param_groups[0]["lr"])
        seen.append(ours_opt.param_groups[0]["lr"])
        ours_opt.step()  # no gradients: a no-op that keeps the scheduler's order check quiet
        hf_opt.step()
        ours.step()
        hf.step()
        if step == 10:  # a resumed scheduler continues the same curve
            fresh_opt = torch.optim.AdamW(params, lr=BASE)
            fresh = stage_scheduler(fresh_opt, total, 0.05)
            fresh_opt.load_state_dict(ours_opt.state_dict())
            fresh.load_state_dict(ours.state_dict())
            ours_opt, ours = fresh_opt, fresh
    assert seen == pytest.approx([_formula(s, total, 0.05) for s in range(total)], abs=1e-15)
