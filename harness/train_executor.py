"""The real cell executor: train a method with `livr_core`'s trainer, then answer the test set.

Owns `LivrExecutor` (the `livr` entry of `harness.executor.EXECUTORS`), `train_config` and
`EXECUTOR_VERSION`. For a cell it

1. builds the method's model (`harness.modeling.prepare`: backbone, K latents, LoRA / full /
   latent rows only / nothing);
2. for a trained method, runs `livr_core.trainer.Trainer` on the train split: stage 1 under the
   method's mask, stage 2 causal, the method's epochs and lr, the paper's other defaults
   (`TrainConfig`). With the "best" rule, validation accuracy after every epoch is
   `CellData.val_accuracy` of greedy answers to the val split, i.e. scored exactly as the test
   set is; "final" keeps the last epoch and needs no val split. Checkpoints go to
   `folder.checkpoints`; a resumed cell (`folder.resumed`) continues from the newest one;
3. greedily answers every test record in batches and returns the raw texts (zero-shot: only
   this step). The harness parses and scores them.

Mirage cells (`MethodSpec.objective == "mirage"`) train with `livr_core.mirage.MirageObjective`,
given the helper images of the train split(s) (`builders.helpers.read_helpers`), and answer with
Mirage's latent feedback (`harness.modeling`); no helper is read for validation or test. A task
whose answers are long (VSP plans) raises the cell's generation budget to its `max_new_tokens`
param in tasks.toml.

Its `executor_info` (stored in metrics.json) records the built folder, device, weights source,
per-epoch history (train loss, val accuracy), the selected checkpoint and its val accuracy, the
checkpoint a resumed cell continued from, and timings. Image-twice cells double every image at
training, validation and test alike (`harness.samples`).

`fingerprint()` holds what changes results beyond the cell config: the trainer's, LoRA's and
encoding's defaults, the run settings of `ModelOptions` and `EXECUTOR_VERSION` (bumped when this
module changes what a cell computes). Where the weights come from (`source`, `models_dir`), the
device and the generation batch size are left out: the backbone name already names the weights,
and answers do not depend on the batch size (livr_core tests it). `precision` enters as given:
"auto" means bf16 autocast on a GPU and fp32 on a CPU, so one store should be run on one kind of
device. The fingerprint needs only `livr_core.configs` and `harness.options`, so building this
executor (as `--dry-run` does) imports neither torch nor peft.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from harness.cells import CellConfig
from harness.executor import CellData, CellFolder, CellResult
from harness.options import ModelOptions, answer_budget
from livr_core.configs import (
    RESUME_FREE,
    EncodingConfig,
    FinetuneConfig,
    LoadOptions,
    MaskVariant,
    MirageConfig,
    TrainConfig,
)
from livr_core.schedule import schedule_warnings

if TYPE_CHECKING:
    from harness.modeling import Prepared
    from harness.plan import Cell
    from livr_core.trainer import StepCallback

# torch, peft, transformers and the rest of livr_core are imported where a cell runs, not here:
# `harness run --dry-run` builds this executor for its fingerprint and must stay instant.

EXECUTOR_VERSION = 1
# TrainConfig fields a cell sets itself (already in its hash) ...
PER_CELL = ("epochs", "stage1_mask", "lr", "seed", "select", "precision")
# ... and those that change nothing in the trajectory (`livr_core.configs.RESUME_FREE`) are left
# out of the fingerprint.


def train_config(cell: CellConfig, options: ModelOptions) -> TrainConfig:
    """The trainer's configuration for a trained cell: the method's schedule, paper defaults."""
    method = cell.method
    stage1 = MaskVariant[method.stage1_mask] if method.stage1_mask else TrainConfig.stage1_mask
    if method.objective == "mirage":
        stage1 = MaskVariant.CAUSAL  # Mirage has no bottleneck: its stage 1 is the helper loss
    return TrainConfig(
        epochs=method.epochs,
        stage1_mask=stage1,
        lr=method.lr,
        seed=cell.seed,
        select=cell.checkpoint,  # type: ignore[arg-type]  # "best" | "final" for trained cells
        precision=options.precision,  # type: ignore[arg-type]
        progress_bar=options.progress,
        per_device_batch_size=options.train_batch_size,
        grad_accumulation=options.grad_accumulation,
    )


def mirage_objective(cell: CellConfig, data: CellData, prepared: Prepared) -> Any:
    """Mirage's trainer objective with the train split's helper images, or None (other methods)."""
    if cell.method.objective != "mirage":
        return None
    from builders.helpers import read_helpers
    from builders.io import split_dir
    from livr_core.mirage import MirageObjective

    helpers = {}
    for task in cell.train_tasks:
        helpers.update(read_helpers(split_dir(data.built, task, "train")))
    return MirageObjective(
        prepared.adapter, prepared.backbone.processor, helpers,
        MirageConfig(ce_weight=cell.method.mirage_ce_weight),
    )


class LivrExecutor:
    """Trains and evaluates cells with livr_core; options are `ModelOptions` fields."""

    name = "livr"

    def __init__(self, **options: Any) -> None:
        self.options = ModelOptions.parse(options)
        self.on_micro_step: StepCallback | None = None  # observes training (tests, progress)

    def fingerprint(self) -> Mapping[str, Any]:
        skip = set(PER_CELL) | set(RESUME_FREE)
        finetune = asdict(FinetuneConfig())
        return {
            "version": EXECUTOR_VERSION,
            "train": {k: v for k, v in asdict(TrainConfig()).items() if k not in skip},
            "lora": {k: finetune[k] for k in ("r", "alpha", "dropout")},
            "max_length": EncodingConfig().max_length,
            "tiny_weights_seed": LoadOptions().seed,  # the tiny backbones' random weights
            **self.options.run_settings(),
        }

    def plan_warnings(self, cell: Cell) -> list[str]:
        """What the trainer will warn about for a planned cell (a stage trained at learning rate
        0, or shorter than its warm-up), from the plan's example count, on one process."""
        if not cell.config.method.trained:
            return []
        config = train_config(cell.config, self.options)
        return schedule_warnings(config, cell.cost.train_examples)

    def run(self, cell: CellConfig, data: CellData, folder: CellFolder) -> CellResult:
        import torch

        try:
            return self._run(cell, data, folder)
        finally:
            # A table runs many cells in one process: free this cell's model before the next one
            # loads (peft wrappers hold reference cycles, and GPU memory never triggers the GC).
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def _run(self, cell: CellConfig, data: CellData, folder: CellFolder) -> CellResult:
        from harness.modeling import generate_texts, prepare
        from harness.samples import generation_options, generation_samples

        start = time.perf_counter()
        options = answer_budget(self.options, (*cell.train_tasks, *cell.eval_tasks))
        prepared = prepare(cell.backbone, cell.method, options, cell.seed)
        info: dict[str, Any] = {
            "built": str(data.built.resolve()),  # `harness eval` / `diagnose` default
            "device": str(options.resolved_device()),
            "source": options.source_for(cell.backbone),
        }
        if cell.method.trained:
            info.update(self._train(cell, data, folder, prepared, options))
        tested = time.perf_counter()
        samples = generation_samples(cell, data)  # a zero-shot cell: asked as its protocol says
        texts = generate_texts(prepared, samples, generation_options(cell, options))
        info["test_seconds"] = round(time.perf_counter() - tested, 3)
        info["total_seconds"] = round(time.perf_counter() - start, 3)
        return CellResult(texts, info)

    def _train(
        self, cell: CellConfig, data: CellData, folder: CellFolder, prepared: Prepared,
        options: ModelOptions,
    ) -> dict[str, Any]:
        from harness.modeling import generate_texts
        from harness.samples import to_samples
        from livr_core.distributed import Runtime
        from livr_core.trainer import Trainer

        twice = cell.method.image_twice
        evaluate = None
        if cell.checkpoint == "best":
            val = to_samples(data.val(), twice, with_answer=False)

            def evaluate(model: Any) -> float:
                trained = replace(prepared, model=model)
                return data.val_accuracy(generate_texts(trained, val, options))

        trainer = Trainer(
            prepared.model, prepared.adapter, prepared.encoder,
            to_samples(data.train(), twice), folder.checkpoints,
            train_config(cell, options),
            evaluate=evaluate, on_micro_step=self.on_micro_step,
            runtime=Runtime.create(str(options.resolved_device())),
            objective=mirage_objective(cell, data, prepared),
        )
        started = time.perf_counter()
        result = trainer.fit(resume=folder.resumed)
        prepared.model = result.model
        return {
            "train_examples": len(trainer.samples),
            # the checkpoint actually used: a damaged newest one is passed over
            "resumed_from": result.resumed_from.name if result.resumed_from else None,
            "selected": result.selected.name,
            "val_accuracy": result.metric,
            "global_step": result.global_step,
            "history": result.history,
            "train_seconds": round(time.perf_counter() - started, 3),
        }
