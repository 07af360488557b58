"""Where a training run executes: one process (the paper's setting) or several through accelerate.

Owns `Runtime`, the only place the trainer meets process groups. A plain `python` run gets a
single-process runtime that touches nothing (no wrapper, `loss.backward()`, no collectives).
Launched with several processes (`accelerate launch --num_processes N ...` or `torchrun`, which
set WORLD_SIZE > 1), the same code gets an `accelerate.Accelerator`: the model is wrapped in DDP,
the optimizer in accelerate's wrapper, each epoch's DataLoader is sharded across processes (batch
i goes to process i mod N; uneven tails are padded by accelerate's `even_batches`), gradients
are all-reduced only on the micro-batch that ends an accumulation window (`no_sync` before),
and only the main process writes checkpoints or shows a progress bar.

The effective batch is per-device batch x accumulation x processes, so a DDP run with the
defaults trains on 8 x N examples per update: lower `grad_accumulation` to keep the paper's 8.
`Runtime.create(use_accelerate=True)` forces the accelerate path in a single process (tests).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.data import DataLoader

if TYPE_CHECKING:  # accelerate is imported only when a run uses it
    from accelerate import Accelerator


@dataclass
class Runtime:
    """The device and, when distributed, the accelerator of a run."""

    device: torch.device
    accelerator: Accelerator | None = None

    @classmethod
    def create(cls, device: str | None = None, use_accelerate: bool | None = None) -> Runtime:
        """Single process unless launched with WORLD_SIZE > 1 (or `use_accelerate=True`)."""
        if use_accelerate is None:
            use_accelerate = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if use_accelerate:
            from accelerate import Accelerator

            # Precision stays with the trainer (autocast), so accelerate adds no casting of its own.
            accelerator = Accelerator(cpu=device == "cpu", mixed_precision="no")
            return cls(device=accelerator.device, accelerator=accelerator)
        return cls(torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")))

    @property
    def num_processes(self) -> int:
        return self.accelerator.num_processes if self.accelerator else 1

    @property
    def process_index(self) -> int:
        return self.accelerator.process_index if self.accelerator else 0

    @property
    def is_main(self) -> bool:
        return self.process_index == 0

    def prepare_model(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        return self.accelerator.prepare_model(model) if self.accelerator else model

    def prepare_optimizer(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        return self.accelerator.prepare_optimizer(optimizer) if self.accelerator else optimizer

    def prepare_loader(self, loader: DataLoader) -> DataLoader:
        return self.accelerator.prepare_data_loader(loader) if self.accelerator else loader

    def unwrap(self, model: nn.Module) -> nn.Module:
        """The model without the DDP wrapper (a peft model stays a peft model)."""
        return self.accelerator.unwrap_model(model) if self.accelerator else model

    def backward(self, loss: torch.Tensor) -> None:
        if self.accelerator:
            self.accelerator.backward(loss)
        else:
            loss.backward()

    @contextmanager
    def gradient_sync(self, model: nn.Module, sync: bool) -> Iterator[None]:
        """Skip DDP's all-reduce on micro-batches that do not end an accumulation window."""
        context = (
            self.accelerator.no_sync(model) if self.accelerator and not sync else nullcontext()
        )
        with context:
            yield

    def mean(self, value: float) -> float:
        """`value` averaged over processes (for logging only)."""
        if not self.accelerator or self.num_processes == 1:
            return value
        tensor = torch.tensor([value], device=self.device)
        return float(self.accelerator.reduce(tensor, reduction="mean").item())

    def broadcast(self, value: object) -> object:
        """The main process's `value` on every process (e.g. a validation metric)."""
        if not self.accelerator or self.num_processes == 1:
            return value
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value], from_process=0)[0]

    def barrier(self) -> None:
        if self.accelerator:
            self.accelerator.wait_for_everyone()
