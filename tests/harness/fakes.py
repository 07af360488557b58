"""Tiny fake built splits and test executors for the harness tests (no models, no images)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from pathlib import Path

from builders.io import split_dir, write_records
from builders.record import Record, make_idx
from builders.registry import LETTERS, load_registry
from harness.cells import CellConfig
from harness.executor import CellData, CellFolder, CellResult, OracleExecutor

SPLIT_SIZES = {"train": 6, "val": 4, "test": 5}


def fake_records(task: str, split: str, n: int) -> list[Record]:
    spec = load_registry().resolve(task)
    records = []
    for i in range(1, n + 1):
        # Gold letters cycle through the options; counts through 2..10.
        mcq = spec.answer_type == "mcq"
        answer = f"({LETTERS[i % spec.num_options]})" if mcq else str(2 + i % 9)
        records.append(Record(
            idx=make_idx(spec, split, i), question=spec.question, sub_task=spec.sub_task,
            images=[b"not-an-image"], choices=list(spec.choices), answer=answer,
            prompt=spec.prompt, explanation="", task=spec.name, split=split, source="{}",
        ))
    return records


def write_built(root: Path, tasks: Iterable[str], splits: dict[str, int] | None = None) -> Path:
    """Fake splits for `tasks` under `root`: <root>/<task>/<split>/ with a manifest."""
    for task in tasks:
        for split, n in (splits or SPLIT_SIZES).items():
            records = fake_records(task, split, n)
            manifest = {"task": task, "split": split, "n": n,
                        "records": [{"idx": r.idx, "answer": r.answer} for r in records]}
            write_records(records, split_dir(root, task, split), manifest)
    return root


class CrashingExecutor(OracleExecutor):
    """The oracle, except that cells whose (task, method) is in `crash` raise."""

    name = "oracle"  # same hash as the oracle: a crash must not change the cell's identity

    def __init__(self, crash: set[tuple[str, str]] | None = None) -> None:
        self.crash = crash or set()
        self.calls: list[tuple[str, str, str, bool]] = []

    def run(self, cell: CellConfig, data: CellData, folder: CellFolder) -> CellResult:
        self.calls.append((cell.backbone, cell.task, cell.method.name, folder.resumed))
        (folder.checkpoints / f"attempt{folder.attempt}").write_text("state")
        if (cell.task, cell.method.name) in self.crash:
            raise RuntimeError(f"boom in {cell.task}/{cell.method.name}")
        return super().run(cell, data, folder)


class Killed(BaseException):
    """Stands for SIGKILL in-process: nothing in the harness catches it."""


class KillingExecutor(CrashingExecutor):
    def run(self, cell: CellConfig, data: CellData, folder: CellFolder) -> CellResult:
        if (cell.task, cell.method.name) in self.crash:
            self.calls.append((cell.backbone, cell.task, cell.method.name, folder.resumed))
            (folder.checkpoints / "epoch1").write_text("state")
            raise Killed()
        return super().run(cell, data, folder)


def crash_in_livr_localization() -> CrashingExecutor:
    """For CLI tests (`--executor tests.harness.fakes:crash_in_livr_localization`)."""
    return CrashingExecutor({("localization", "livr")})


def sigkill_executor() -> OracleExecutor:
    """For the subprocess test (`--executor tests.harness.fakes:sigkill_executor`): the oracle,
    except that the process SIGKILLs itself in the cell named by $HARNESS_TEST_KILL_IN."""

    class SigKill(OracleExecutor):
        def run(self, cell: CellConfig, data: CellData, folder: CellFolder) -> CellResult:
            if cell.method.name == os.environ.get("HARNESS_TEST_KILL_IN"):
                (folder.checkpoints / "partial").write_text("state")
                os.kill(os.getpid(), signal.SIGKILL)
            return super().run(cell, data, folder)

    return SigKill()


def racing_executor() -> OracleExecutor:
    """For the two-process test (`--executor tests.harness.fakes:racing_executor`): two
    processes meet at a file barrier in $HARNESS_TEST_RACE (so they reach their first cell
    together), every status check takes 1 s (a slow shared file system: the window in which
    both could see the cell "new"), and every run of a cell appends this pid to runs.log."""
    import time
    from pathlib import Path

    from harness.store import RunStore

    race = Path(os.environ["HARNESS_TEST_RACE"])
    (race / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while len(list(race.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    original = RunStore.status_of

    def slow_status_of(self: RunStore, config: CellConfig) -> str:
        status = original(self, config)
        time.sleep(1.0)
        return status

    RunStore.status_of = slow_status_of  # type: ignore[method-assign]

    class Recording(OracleExecutor):
        def run(self, cell: CellConfig, data: CellData, folder: CellFolder) -> CellResult:
            with open(race / "runs.log", "a", encoding="utf-8") as log:
                log.write(f"{os.getpid()}\n")
            return super().run(cell, data, folder)

    return Recording()
