"""The LIVR trainer: stage 1 under a bottleneck mask, then stage 2 under the causal mask.

Owns `Trainer`, `TrainResult`, `StepInfo` and `epoch_order`; its configuration, `TrainConfig`
(every training default, with its reason), lives in `livr_core.configs`. One loop serves every
method, chosen by configuration and by the encoder given:

| method | encoder | `TrainConfig` |
|---|---|---|
| LIVR single-task (Table 1) | with latents | defaults: epochs (4, 6), best validation checkpoint |
| LIVR multi-task (Table 2) | with latents | epochs=(2, 3), select="final" |
| direct SFT | no latents | epochs=(0, 10) (multi-task: (0, 5), select="final") |
| latents only (ablation) | with latents | epochs=(0, 10) |
| mask only (ablation) | no latents | stage1_mask=MaskVariant.MASK_ONLY |
| mask ablations | with latents | stage1_mask=ANSWER_ONLY / BOTTLENECK_LATENTS_NO_PROMPT (or _NO_TEXT) |
| Mirage comparison | K=4 latents, model from `FinetuneConfig(mode="full")` | epochs=(10, 10), lr=1e-5 |
| Mirage itself | Mirage's layout (`livr_core.mirage`) | as above, stage1_mask=CAUSAL, `objective=MirageObjective` |

Per stage the trainer builds a fresh AdamW over `lora.param_groups` (weight decay on LoRA and the
latent rows only; a frozen row is not a parameter, so it cannot decay) and a fresh warm-up +
cosine schedule (`schedule`), so each stage starts like a separate run from the previous stage's
weights. Each epoch visits the samples in `epoch_order(seed, stage, epoch)`, in micro-batches of
`per_device_batch_size` encoded on the fly; the loss of a micro-batch is the model's mean token
NLL over its answer tokens (the encoder's labels), divided by the number of micro-batches in its
accumulation window, so each micro-batch weighs equally in an update (the last window of an epoch
may be shorter; windows never span epochs).

An `objective` (e.g. `livr_core.mirage.MirageObjective`) replaces that loss: the trainer calls
`objective(model, inputs, batch, stage)` for each micro-batch and backpropagates what it returns
(the schedule, accumulation, checkpoints and resume stay the trainer's). Its `fingerprint()` joins
the run's, so a checkpoint is resumed only by the same objective.

After every epoch the caller's `evaluate(model) -> float` runs (validation accuracy; the trainer
knows no task metric) on the main process, in eval mode, without gradients and with the training
RNG streams saved and restored around it, so evaluating never changes the training trajectory.
The best epoch so far is exported to `<output_dir>/best/`, the last to `final/`; `select`
chooses which one the returned model carries. Checkpoints (see `checkpoint`) are written every
`save_every` updates and at every epoch end; `fit()` resumes from the newest one that verifies
against its checksums (falling back past a damaged one, with a warning), and a run killed
anywhere ends with bit-identical weights to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import set_seed

from livr_core.backbones.base import BackboneAdapter, unwrap
from livr_core.checkpoint import (
    Progress,
    capture_rng,
    export_model,
    load_trainable,
    restore_rng,
    resume_from,
    save_checkpoint,
)
from livr_core.configs import RESUME_FREE, MaskVariant, TrainConfig
from livr_core.distributed import Runtime
from livr_core.encoding import Batch, Encoder, Sample
from livr_core.lora import param_groups
from livr_core.model_inputs import forward_inputs
from livr_core.schedule import (
    micro_batches_per_epoch,
    schedule_warnings,
    stage_scheduler,
    updates_per_epoch,
)

Evaluate = Callable[[nn.Module], float]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepInfo:
    """What `on_micro_step` sees after each micro-batch (and the update it may have ended)."""

    progress: Progress  # the live counters (read only)
    loss: float  # this micro-batch's mean answer-token NLL
    lr: float | None  # the learning rate of the update this micro-batch ended, else None


StepCallback = Callable[[StepInfo], None]


class Objective(Protocol):
    """A training loss other than the answer NLL (see the module docstring)."""

    def __call__(
        self, model: nn.Module, inputs: dict[str, Any], batch: Batch, stage: int
    ) -> torch.Tensor: ...

    def fingerprint(self) -> dict[str, Any]: ...


@dataclass
class TrainResult:
    """The finished run: its model (selected weights, eval mode) and per-epoch records."""

    model: nn.Module
    selected: Path  # best/ or final/ under the output directory
    metric: float | None  # validation metric of the selected weights (None: no evaluation)
    history: list[dict[str, Any]] = field(default_factory=list)
    global_step: int = 0
    resumed_from: Path | None = None  # the checkpoint this run continued from, if any


def epoch_order(num_samples: int, seed: int, stage: int, epoch: int) -> list[int]:
    """The sample order of one epoch: a pure function, so a resume needs no sampler state."""
    return np.random.default_rng([seed, stage, epoch]).permutation(num_samples).tolist()


def autocast_for(precision: str, device: torch.device) -> AbstractContextManager:
    """The compute precision of training, for anything that must run the model the same way
    (validation, test decoding, diagnostics): bf16 autocast on GPU for "auto", else fp32."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


class Trainer:
    """Trains `model` (from `lora.apply_finetuning`) on `samples` encoded by `encoder`."""

    def __init__(
        self,
        model: nn.Module,
        adapter: BackboneAdapter,
        encoder: Encoder,
        samples: Sequence[Sample],
        output_dir: str | Path,
        config: TrainConfig = TrainConfig(),
        *,
        evaluate: Evaluate | None = None,
        on_micro_step: StepCallback | None = None,
        runtime: Runtime | None = None,
        objective: Objective | None = None,
    ) -> None:
        if config.stage1_mask is MaskVariant.CAUSAL and config.epochs[0] and objective is None:
            raise ValueError("stage 1 with the causal mask and the answer loss is stage 2: use "
                             "epochs=(0, n), or pass an objective of its own")
        if config.select == "best" and evaluate is None:
            raise ValueError('select="best" needs an evaluate function (or use select="final")')
        if not samples:
            raise ValueError("no training samples")
        self.config = config
        self.adapter = adapter
        self.encoder = encoder
        self.samples = list(samples)
        self.output_dir = Path(output_dir)
        self.evaluate = evaluate
        self.on_micro_step = on_micro_step
        self.objective = objective
        self.runtime = runtime or Runtime.create()
        if config.gradient_checkpointing:
            # Non-reentrant: works with peft's frozen inputs and replays dropout RNG exactly.
            unwrap(model).activation_checkpointing_enable({"use_reentrant": False})
        self.model = self.runtime.prepare_model(model)
        self.inner = self.runtime.unwrap(self.model)  # the peft model: inputs, saving, evaluation
        world = self.runtime.num_processes
        self.micro_per_epoch = micro_batches_per_epoch(
            len(samples), config.per_device_batch_size, world
        )
        self.steps_per_epoch = updates_per_epoch(
            len(samples), config.per_device_batch_size, config.grad_accumulation, world
        )
        if self.runtime.is_main:
            for warning in self.schedule_warnings():
                logger.warning(warning)

    def schedule_warnings(self) -> list[str]:
        """Stages whose updates all happen at learning rate 0, or that are shorter than their
        warm-up needs (`schedule.stage_warnings`)."""
        return schedule_warnings(self.config, len(self.samples), self.runtime.num_processes)

    # ---------------------------------------------------------------------------------- run
    def fit(self, resume: bool = True) -> TrainResult:
        """Run (or continue, from the newest valid checkpoint when `resume`) every stage.

        A damaged newest checkpoint is passed over for the previous one, with a warning
        (`checkpoint.resume_from`)."""
        config, runtime = self.config, self.runtime
        found = resume_from(self.output_dir, runtime) if resume else None
        state = None
        if found is None:
            set_seed(config.seed)
            progress = Progress()
        else:
            state = found.state
            if state.fingerprint != self.fingerprint():
                raise ValueError(
                    f"{found.path} was written by another configuration or training set; use "
                    "another output directory or fit(resume=False)"
                )
            load_trainable(self.inner, found.path)
            progress = state.progress
        self.model.train()
        for stage, epochs in enumerate(config.epochs):
            if epochs == 0 or stage < progress.stage:
                continue
            if stage > progress.stage:
                progress = Progress(
                    stage=stage,
                    global_step=progress.global_step,
                    history=progress.history,
                    best_metric=progress.best_metric,
                )
            optimizer, scheduler = self._optimizer(self.steps_per_epoch * epochs)
            if state is not None:  # resuming inside this stage
                optimizer.load_state_dict(state.optimizer)
                scheduler.load_state_dict(state.scheduler)
                restore_rng(state.rng)
                state = None
            self._run_stage(progress, epochs, optimizer, scheduler)
        result = self._finish(progress)
        result.resumed_from = found.path if found else None
        return result

    def _run_stage(
        self, progress: Progress, epochs: int, optimizer: Optimizer, scheduler: LambdaLR
    ) -> None:
        config, stage = self.config, progress.stage
        variant = config.stage_mask(stage)
        bar = tqdm(
            total=self.steps_per_epoch * epochs,
            initial=progress.stage_step,
            desc=f"stage {stage + 1} ({variant.value})",
            disable=not (config.progress_bar and self.runtime.is_main),
            dynamic_ncols=True,
        )
        window_loss = 0.0
        for epoch in range(progress.epoch, epochs):
            progress.epoch = epoch
            for batch in self._loader(stage, epoch, progress.micro_step):
                micro = progress.micro_step
                window_start = micro - micro % config.grad_accumulation
                window = min(config.grad_accumulation, self.micro_per_epoch - window_start)
                ends_window = micro + 1 == window_start + window
                loss = self._micro_step(batch, variant, window, ends_window, stage)
                progress.micro_step += 1
                progress.epoch_loss_sum += loss
                progress.epoch_loss_count += 1
                window_loss += loss / window
                lr = None
                if ends_window:
                    lr = optimizer.param_groups[0]["lr"]  # the rate this update uses
                    self._update(optimizer, scheduler)
                    progress.stage_step += 1
                    progress.global_step += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{self.runtime.mean(window_loss):.4f}", lr=f"{lr:.2e}")
                    window_loss = 0.0
                    mid_epoch = progress.micro_step < self.micro_per_epoch  # epoch end saves anyway
                    if mid_epoch and progress.global_step % config.save_every == 0:
                        self._save(progress, optimizer, scheduler)
                if self.on_micro_step is not None:
                    self.on_micro_step(StepInfo(progress, loss, lr))
            self._end_epoch(progress, optimizer, scheduler)
        bar.close()

    # --------------------------------------------------------------------------------- steps
    def _micro_step(
        self, batch: Batch, variant: MaskVariant, window: int, sync: bool, stage: int
    ) -> float:
        batch = batch.to(self.runtime.device)
        inputs = forward_inputs(self.inner, self.adapter, batch, variant)
        with self.runtime.gradient_sync(self.model, sync):
            with self._autocast():
                if self.objective is None:
                    loss = self.model(**inputs, labels=batch.labels, use_cache=False).loss
                else:
                    loss = self.objective(self.model, inputs, batch, stage)
            self.runtime.backward(loss / window)
        return float(loss.detach())

    def _update(self, optimizer: Optimizer, scheduler: LambdaLR) -> None:
        if self.config.max_grad_norm is not None:
            params = [p for p in self.model.parameters() if p.requires_grad]
            torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

    def _optimizer(self, total_steps: int) -> tuple[Optimizer, LambdaLR]:
        config = self.config
        optimizer = torch.optim.AdamW(
            param_groups(self.inner, config.weight_decay),
            lr=config.lr,
            betas=config.betas,
            eps=config.eps,
        )
        scheduler = stage_scheduler(optimizer, total_steps, config.warmup_ratio)
        return self.runtime.prepare_optimizer(optimizer), scheduler

    def _loader(self, stage: int, epoch: int, skip_micro: int) -> DataLoader:
        """This epoch's micro-batches, from micro-batch `skip_micro` of this process on."""
        size = self.config.per_device_batch_size
        order = epoch_order(len(self.samples), self.config.seed, stage, epoch)
        start = skip_micro * size * self.runtime.num_processes
        loader = DataLoader(
            self.samples,
            batch_size=size,
            sampler=order[start:],
            collate_fn=self.encoder,
            num_workers=self.config.dataloader_workers,
            # A loader draws its workers' base seed from the global RNG unless given its own
            # generator; that draw would shift the dropout stream whenever a resume rebuilds it.
            generator=torch.Generator().manual_seed(self.config.seed),
        )
        return self.runtime.prepare_loader(loader)

    def _autocast(self) -> AbstractContextManager:
        return autocast_for(self.config.precision, self.runtime.device)

    # ----------------------------------------------------------------- epochs and checkpoints
    def _end_epoch(self, progress: Progress, optimizer: Optimizer, scheduler: LambdaLR) -> None:
        metric = self._validate()
        count = max(1, progress.epoch_loss_count)
        record = {
            "stage": progress.stage + 1,
            "epoch": progress.epoch + 1,
            "global_step": progress.global_step,
            "train_loss": self.runtime.mean(progress.epoch_loss_sum / count),
            "val_metric": metric,
        }
        progress.history.append(record)
        progress.epoch += 1
        progress.micro_step = progress.epoch_loss_count = 0
        progress.epoch_loss_sum = 0.0
        if metric is not None and (progress.best_metric is None or metric > progress.best_metric):
            progress.best_metric = metric  # ties keep the earlier epoch
            export_model(self.output_dir / "best", self.inner, self.runtime, record)
        self._save(progress, optimizer, scheduler)

    def _validate(self) -> float | None:
        if self.evaluate is None:
            return None
        metric = None
        if self.runtime.is_main:
            rng = capture_rng()  # evaluation must not shift the training's random streams
            self.model.eval()
            with torch.no_grad(), self._autocast():
                metric = float(self.evaluate(self.inner))
            self.model.train()
            restore_rng(rng)
        return self.runtime.broadcast(metric)

    def _save(self, progress: Progress, optimizer: Optimizer, scheduler: LambdaLR) -> None:
        save_checkpoint(
            self.output_dir,
            self.inner,
            optimizer,
            scheduler,
            progress,
            self.fingerprint(),
            self.runtime,
            self.config.keep_last,
        )

    def _finish(self, progress: Progress) -> TrainResult:
        last = progress.history[-1] if progress.history else {}
        export_model(self.output_dir / "final", self.inner, self.runtime, last)
        selected, metric = self.output_dir / "final", last.get("val_metric")
        if self.config.select == "best" and progress.best_metric is not None:
            selected, metric = self.output_dir / "best", progress.best_metric
            load_trainable(self.inner, selected)
        self.model.eval()
        return TrainResult(self.inner, selected, metric, progress.history, progress.global_step)

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must share with this run to be resumed by it."""
        config = {k: v for k, v in asdict(self.config).items() if k not in RESUME_FREE}
        ids = hashlib.sha256("\n".join(s.id for s in self.samples).encode()).hexdigest()
        fingerprint = {
            **config,
            "samples": len(self.samples),
            "sample_ids_sha256": ids,
            "processes": self.runtime.num_processes,
        }
        if self.objective is not None:
            fingerprint["objective"] = self.objective.fingerprint()
        return json.loads(json.dumps(fingerprint))  # the form it has once read back
