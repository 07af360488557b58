"""The trainer on a tiny backbone: exact resume, per-stage schedules, loss weighting, modes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from livr_core.backbones import load_backbone
from livr_core.backbones.base import unwrap
from livr_core.checkpoint import (
    TRAINABLE_FILE,
    latest_checkpoint,
    load_trainable,
    read_checkpoint,
)
from livr_core.configs import FinetuneConfig, LatentConfig, MaskVariant, TrainConfig
from livr_core.distributed import Runtime
from livr_core.encoding import Encoder
from livr_core.latents import add_latent_tokens
from livr_core.lora import apply_finetuning
from livr_core.model_inputs import forward_inputs
from livr_core.schedule import lr_at
from livr_core.trainer import StepInfo, Trainer, epoch_order
from tests.livr_core.samples import K, two_image_sample

ANSWERS = ["(A)", "(B) right", "7", "(A) the left image is brighter", "(C)"]
BACKBONE = "tiny-qwen2.5-vl"


def _samples(n: int) -> list:
    return [two_image_sample(10 * i, ANSWERS[i % len(ANSWERS)], f"s{i}") for i in range(n)]


def _setup(latents: bool = True, finetune: FinetuneConfig | None = None):
    """A fresh model, as a new process would build it (same seeds, same base weights)."""
    backbone = load_backbone(BACKBONE)
    tokens = add_latent_tokens(backbone, LatentConfig(k=K)) if latents else None
    model = apply_finetuning(backbone, tokens, finetune or FinetuneConfig())
    return backbone, Encoder(backbone, tokens), model


def _trainer(
    directory: Path,
    config: TrainConfig,
    samples,
    latents: bool = True,
    finetune: FinetuneConfig | None = None,
    **kwargs,
) -> Trainer:
    backbone, encoder, model = _setup(latents, finetune)
    return Trainer(model, backbone.adapter, encoder, samples, directory, config, **kwargs)


def _trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


class Killed(RuntimeError):
    pass


class Validation:
    """A stand-in validation metric that also draws from the global RNG, as sampling code may."""

    def __init__(self, values: list[float]) -> None:
        self.values = iter(values)

    def __call__(self, model: torch.nn.Module) -> float:
        torch.rand(3)
        return next(self.values)


# 5 samples, accumulation 2: windows of 2, 2, 1 micro-batches -> 3 updates per epoch.
RESUME_CONFIG = TrainConfig(epochs=(1, 2), grad_accumulation=2, save_every=2, progress_bar=False)
METRICS = [0.2, 0.6, 0.4]  # the best epoch is stage 2, epoch 1


def test_killed_run_resumes_to_bit_identical_weights(tmp_path: Path) -> None:
    samples = _samples(5)
    lrs: list[tuple[int, float]] = []

    def record(info: StepInfo) -> None:
        if info.lr is not None:
            lrs.append((info.progress.stage, info.lr))

    straight = _trainer(
        tmp_path / "a", RESUME_CONFIG, samples, evaluate=Validation(METRICS), on_micro_step=record
    ).fit()

    micro_steps = 0

    def kill(info: StepInfo) -> None:
        nonlocal micro_steps
        micro_steps += 1
        if micro_steps == 9:  # stage 2, after an update (global step 5) that no checkpoint holds
            raise Killed

    with pytest.raises(Killed):
        _trainer(
            tmp_path / "b", RESUME_CONFIG, samples, evaluate=Validation(METRICS), on_micro_step=kill
        ).fit()
    last = latest_checkpoint(tmp_path / "b")
    state = read_checkpoint(last)
    assert last.name == "checkpoint-00000004"
    assert (state.progress.stage, state.progress.epoch, state.progress.micro_step) == (1, 0, 2)
    # the resumed process is new: fresh model objects, RNG state as a new process would have it
    torch.manual_seed(1234)
    resumed = _trainer(
        tmp_path / "b", RESUME_CONFIG, samples, evaluate=Validation(METRICS[1:])
    ).fit()

    assert resumed.global_step == straight.global_step == 9
    final_a = load_file(str(tmp_path / "a" / "final" / TRAINABLE_FILE))
    final_b = load_file(str(tmp_path / "b" / "final" / TRAINABLE_FILE))
    assert final_a.keys() == final_b.keys() and len(final_a) > 0
    for name in final_a:
        assert torch.equal(final_a[name], final_b[name]), name
    # both return the best epoch's weights, also bit-identical, and the same history
    assert straight.selected.name == resumed.selected.name == "best"
    assert straight.metric == resumed.metric == 0.6
    best_a, best_b = _trainable(straight.model), _trainable(resumed.model)
    assert all(torch.equal(best_a[n], best_b[n]) for n in best_a)
    assert not all(torch.equal(best_a[n], final_a[n]) for n in best_a)  # best != final
    assert straight.history == resumed.history
    records = [(h["stage"], h["epoch"], h["val_metric"]) for h in straight.history]
    assert records == [(1, 1, 0.2), (2, 1, 0.6), (2, 2, 0.4)]
    # only the newest `keep_last` checkpoints stay
    kept = sorted(p.name for p in (tmp_path / "a").glob("checkpoint-*"))
    assert kept == ["checkpoint-00000008", "checkpoint-00000009"]

    # the schedule restarts per stage: warm-up + cosine over 3, then over 6 updates
    for stage, total in ((0, 3), (1, 6)):
        seen = [lr for s, lr in lrs if s == stage]
        expected = [
            lr_at(i, base_lr=1e-4, total_steps=total, warmup_ratio=0.05) for i in range(total)
        ]
        assert seen == pytest.approx(expected, abs=1e-15)

    # another configuration cannot resume this run
    other = replace(RESUME_CONFIG, lr=2e-4)
    with pytest.raises(ValueError, match="another configuration"):
        _trainer(tmp_path / "a", other, samples, evaluate=Validation(METRICS)).fit()


def test_micro_batches_weigh_equally_in_an_update(tmp_path: Path, monkeypatch) -> None:
    samples = _samples(4)[:3]  # answers of 3, 9 and 1 characters (+ end of turn)
    no_dropout = FinetuneConfig(dropout=0.0)
    config = TrainConfig(
        epochs=(1, 0), grad_accumulation=3, max_grad_norm=None, select="final", progress_bar=False
    )
    captured: dict[str, torch.Tensor] = {}
    original = Trainer._update

    def capture(self, optimizer, scheduler) -> None:
        if not captured:
            captured.update(
                {n: p.grad.clone() for n, p in self.inner.named_parameters() if p.requires_grad}
            )
        original(self, optimizer, scheduler)

    monkeypatch.setattr(Trainer, "_update", capture)
    _trainer(tmp_path, config, samples, finetune=no_dropout).fit()

    backbone, encoder, model = _setup(finetune=no_dropout)
    per_sample, tokens = [], []
    for sample in samples:
        model.zero_grad()
        batch = encoder([sample])
        inputs = forward_inputs(model, backbone.adapter, batch, MaskVariant.BOTTLENECK)
        model(**inputs, labels=batch.labels, use_cache=False).loss.backward()
        per_sample.append(
            {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        )
        tokens.append(int((batch.labels != -100).sum()))
    for name, grad in captured.items():
        mean = sum(g[name] for g in per_sample) / 3
        assert torch.allclose(grad, mean, atol=1e-7, rtol=1e-5), name
    # a token-weighted mean (what one batch of 3 would give) differs: the test can tell them apart
    name = next(n for n in captured if "lora_B" in n)
    token_mean = sum(g[name] * t for g, t in zip(per_sample, tokens)) / sum(tokens)
    assert (captured[name] - token_mean).abs().max() > 1e-4


def test_gradient_checkpointing_keeps_the_update(tmp_path: Path) -> None:
    config = TrainConfig(epochs=(1, 0), grad_accumulation=2, select="final", progress_bar=False)
    samples = _samples(2)
    plain = _trainer(tmp_path / "plain", config, samples).fit()
    trainer = _trainer(tmp_path / "gc", replace(config, gradient_checkpointing=True), samples)
    assert unwrap(trainer.inner).is_activation_checkpointing
    checkpointed = trainer.fit()
    a, b = _trainable(plain.model), _trainable(checkpointed.model)
    assert all(torch.allclose(a[n], b[n], atol=1e-6) for n in a)


def test_accelerate_path_and_evaluation_leave_the_trajectory_unchanged(tmp_path: Path) -> None:
    """The plain run evaluates (drawing random numbers) after each epoch; the accelerate run does
    not: the weights agree exactly only if both the runtime and the evaluation are neutral."""
    config = TrainConfig(epochs=(1, 1), grad_accumulation=2, select="final", progress_bar=False)
    samples = _samples(3)
    plain = _trainer(tmp_path / "plain", config, samples, evaluate=Validation([0.5, 0.5])).fit()
    runtime = Runtime.create(device="cpu", use_accelerate=True)
    assert runtime.accelerator is not None and runtime.num_processes == 1
    accelerated = _trainer(tmp_path / "acc", config, samples, runtime=runtime).fit()
    a, b = _trainable(plain.model), _trainable(accelerated.model)
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_mask_only_ablation_trains_without_latents(tmp_path: Path) -> None:
    """No latents, stage 1 under MASK_ONLY then causal: the direct-SFT-shaped path end to end."""
    config = TrainConfig(
        epochs=(1, 1),
        stage1_mask=MaskVariant.MASK_ONLY,
        grad_accumulation=1,  # two updates per stage: the first of each has lr 0 (warm-up)
        select="final",
        progress_bar=False,
    )
    trainer = _trainer(tmp_path, config, _samples(2), latents=False)
    before = _trainable(trainer.inner)
    result = trainer.fit()
    assert all("lora_" in n for n in before)
    assert [h["stage"] for h in result.history] == [1, 2] and result.selected.name == "final"
    after = _trainable(result.model)
    assert any(not torch.equal(before[n], after[n]) for n in before)


def test_full_finetuning_saves_and_restores_the_language_model(tmp_path: Path) -> None:
    config = TrainConfig(
        epochs=(0, 1), lr=1e-5, grad_accumulation=1, select="final", progress_bar=False
    )
    full = FinetuneConfig(mode="full")
    trainer = _trainer(tmp_path, config, _samples(2), latents=False, finetune=full)
    result = trainer.fit()
    assert not (result.selected / "adapter").exists()  # no peft adapter to write
    saved = load_file(str(result.selected / TRAINABLE_FILE))
    assert any(".language_model.layers." in f".{n}" for n in saved)

    backbone, encoder, fresh = _setup(latents=False, finetune=full)
    batch = encoder(_samples(1))
    with torch.no_grad():
        untrained = fresh(**forward_inputs(fresh, backbone.adapter, batch)).logits
    load_trainable(fresh, result.selected)
    with torch.no_grad():
        restored = fresh(**forward_inputs(fresh, backbone.adapter, batch)).logits
        expected = result.model(**forward_inputs(result.model, backbone.adapter, batch)).logits
    assert torch.equal(restored, expected) and not torch.equal(restored, untrained)


def test_epoch_order_is_a_seeded_permutation() -> None:
    order = epoch_order(50, 42, 1, 3)
    assert sorted(order) == list(range(50)) and order == epoch_order(50, 42, 1, 3)
    assert order != epoch_order(50, 42, 1, 4) and order != epoch_order(50, 42, 0, 3)


def test_bad_configurations_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        TrainConfig(epochs=(0, 0))
    causal_stage1 = TrainConfig(stage1_mask=MaskVariant.CAUSAL, select="final")
    with pytest.raises(ValueError, match="pass an objective of its own"):  # it is stage 2
        _trainer(tmp_path, causal_stage1, _samples(1))
    with pytest.raises(ValueError, match="evaluate"):
        _trainer(tmp_path, TrainConfig(), _samples(1))  # select="best" without a metric


def test_trainer_warns_when_a_stage_trains_at_learning_rate_zero(tmp_path: Path, caplog) -> None:
    """`--epochs 2 --limit 4`: one update per stage, the first of the warm-up, at lr 0."""
    config = TrainConfig(epochs=(1, 1), select="final", progress_bar=False)
    with caplog.at_level("WARNING", logger="livr_core.trainer"):
        trainer = _trainer(tmp_path, config, _samples(4))
    messages = [r.getMessage() for r in caplog.records if r.name == "livr_core.trainer"]
    assert messages == trainer.schedule_warnings() and len(messages) == 2
    assert all("learning rate 0" in m for m in messages)
    caplog.clear()
    with caplog.at_level("WARNING", logger="livr_core.trainer"):
        _trainer(tmp_path / "long", replace(config, grad_accumulation=1), _samples(20))
    assert not [r for r in caplog.records if r.name == "livr_core.trainer"]
