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


@pytest.mark.parametrize(
    ("updates", "expected"),
    [
        (0, None), (20, None), (125, None),  # nothing trained; a warm-up of 1 = 5% of 20; normal
        (1, "all 1 update(s) happen at learning rate 0"),
        (4, "4 updates, fewer than the 20 a 5% warm-up needs: 1 of them (25%) are warm-up"),
    ],
)
def test_stage_warnings_name_lr_zero_and_short_stages(updates: int, expected: str | None) -> None:
    from livr_core.schedule import stage_warnings

    warnings = stage_warnings(2, updates, 0.05)
    if expected is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warnings[0].startswith("stage 2: ")
        assert expected in warnings[0]
    # The all-at-zero warning is exactly the curve: one update is the only stage with max lr 0.
    curve = [lr_at(s, base_lr=BASE, total_steps=updates, warmup_ratio=0.05) for s in range(updates)]
    assert (bool(curve) and max(curve) == 0.0) == (updates == 1)
    assert stage_warnings(1, 1, 0.0) == []  # no warm-up: the one update is at the full rate


def test_schedule_warnings_count_updates_like_the_trainer() -> None:
    from livr_core.configs import TrainConfig
    from livr_core.schedule import schedule_warnings, updates_per_epoch

    assert updates_per_epoch(4, 1, 8) == 1 and updates_per_epoch(17, 1, 8) == 3
    assert updates_per_epoch(17, 1, 8, processes=2) == 2  # 9 micro-batches each, windows of 8
    config = TrainConfig(epochs=(1, 1))  # e.g. `--epochs 2 --limit 4` on LIVR
    warnings = schedule_warnings(config, 4)
    assert [w[:8] for w in warnings] == ["stage 1:", "stage 2:"]
    assert all("learning rate 0" in w and "trains nothing" in w for w in warnings)
    assert schedule_warnings(TrainConfig(epochs=(0, 10)), 160) == []  # 200 updates: fine
