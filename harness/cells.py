"""One cell of a table: the resolved config of a single training + evaluation run, and its hash.

Owns `CellConfig`. A cell is (table, backbone, task, method); for a mixture
table `task` is the mixture's name and the cell trains on and evaluates every task of it.

The hash covers exactly what can change the result: backbone, task lists, the method's fields
(not its name or label), limits, seed, the content digest of every built split the cell reads
(`builders.io.split_digest`: the sha256 of every shard, checked against the files, so the hash
changes exactly when the data does), the executor with its fingerprint, and an untrained cell's
zero-shot protocol where it differs from the defaults (`harness.protocol`). It leaves out the
table name, so one configuration has one
hash wherever it appears (Table 4's "(4,6)" and "K=16" rows are the `livr` cell).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from harness.methods import MethodSpec
from harness.protocol import ZeroShotProtocol
from livr_core.configs import SEED

HASH_CHARS = 16  # 64 bits: collisions are not a concern for a few thousand cells


@dataclass(frozen=True)
class CellConfig:
    table: str
    backbone: str
    task: str  # a task name, or the mixture's name
    method: MethodSpec
    train_tasks: tuple[str, ...]  # () when the method trains nothing
    eval_tasks: tuple[str, ...]
    limit: int | None = None  # first `limit` examples of every split (smoke runs)
    train_per_task: int | None = None  # Table 2: 1k per task
    seed: int = SEED  # livr_core's: the paper's seed for every run
    data: dict[str, str] = field(default_factory=dict)  # "<task>/<split>" -> shard digest
    executor: dict[str, Any] = field(default_factory=dict)  # {"name": ..., **fingerprint}
    # How an untrained method is asked (harness.protocol); trained cells keep the default.
    protocol: ZeroShotProtocol = field(default_factory=ZeroShotProtocol)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.table, self.backbone, self.task, self.method.name)

    @property
    def checkpoint(self) -> str:
        """The checkpoint rule: best or final for trained methods, none for zero-shot."""
        return self.method.checkpoint if self.method.trained else "none"

    def identity(self) -> dict[str, Any]:
        method = self.method.identity()
        method["checkpoint"] = self.checkpoint
        return {
            "backbone": self.backbone,
            "task": self.task,
            "method": method,
            "train_tasks": list(self.train_tasks),
            "eval_tasks": list(self.eval_tasks),
            "limit": self.limit,
            "train_per_task": self.train_per_task,
            "seed": self.seed,
            "data": dict(sorted(self.data.items())),
            "executor": self.executor,
            # Only a protocol changed from the defaults enters the hash: cells planned before
            # the protocol existed keep theirs.
            **({"zero_shot": self.protocol.identity()} if self.protocol.identity() else {}),
        }

    @property
    def hash(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]

    def to_json(self) -> dict[str, Any]:
        """The resolved config as stored in the cell folder (identity plus names and hash)."""
        return {
            "hash": self.hash,
            "table": self.table,
            "method_name": self.method.name,
            "method_label": self.method.label,
            **self.identity(),
            "zero_shot": self.protocol.to_json(),  # recorded in full, defaults included
        }
