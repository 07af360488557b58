"""Every cell of every shipped table keeps its hash: a run store made before a refactor is still
found (and not called a conflict) after it. The hashes are computed with fixed data digests and
the real `livr` executor's fingerprint (trainer, LoRA and encoding defaults, run settings), so a
changed default, method field or fingerprint key shows here; the recorded values were computed
before the defaults got one owner each (`livr_core.configs`)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from harness.cells import CellConfig
from harness.config import load_table, table_names
from harness.executor import executor_identity, make_executor

RECORDED = {  # table -> sha256 over "backbone/task/method=hash" lines of its cells
    "broad": "e7525cc3a466314b02e811f7d8f2a2b23b9d78ae7d9ef995eae6470683432a65",
    "mirage": "07e110748b9abee01e4e8567573f61a9018a73d4f64e011723882dd4c0b6ad7b",
    "spatial": "3f3b27f8a985b5da245eff3bb994ea9c4bf1c145fec24d2c37a4da5d1f754c62",
    "table1": "07612c675c509cf641463f731ca8af8666735121d34c3464eabc0d41641aa61a",
    "table2": "d287739b3dad2b56104adad76fd22254e3f9f68f69fa8b01dab06dccbd70e72c",
    "table3": "1c867a5c70c51de902b3b2c4b3a0ba524a0b31896f37913a6e75d2cd27bad249",
    "table4": "c018ebb84a52215c4fe72b8ad450167f54f95d71818f205c02b75135c4b1c325",
}
LIVR_LOCALIZATION = "6c03d123148cc2ea"  # table1, qwen3-vl-4b, localization, livr


def _cells(name: str) -> list[CellConfig]:
    executor = executor_identity(make_executor("livr", {}))
    table = load_table(name)
    out = []
    for backbone in table.backbones:
        for task in table.cell_tasks():
            for method in table.methods.values():
                trained = method.trained
                config = CellConfig(
                    table=table.name, backbone=backbone, task=task, method=method,
                    train_tasks=table.train_tasks(task) if trained else (),
                    eval_tasks=table.eval_tasks(task), limit=table.limit,
                    train_per_task=table.train_per_task, executor=executor,
                    **({} if trained else {"protocol": table.zero_shot}))
                splits = [(t, "test") for t in config.eval_tasks]
                splits += [(t, s) for t in config.train_tasks for s in ("train", "val")]
                out.append(replace(config, data={f"{t}/{s}": "d" * 64 for t, s in splits}))
    return out


def _digest(cells: list[CellConfig]) -> str:
    lines = sorted(f"{'/'.join(c.key[1:])}={c.hash}" for c in cells)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_every_shipped_table_keeps_its_cell_hashes():
    assert sorted(RECORDED) == table_names()
    assert {name: _digest(_cells(name)) for name in RECORDED} == RECORDED


def test_one_recorded_cell():
    cell = next(c for c in _cells("table1")
                if c.key[1:] == ("qwen3-vl-4b", "localization", "livr"))
    assert cell.hash == LIVR_LOCALIZATION
