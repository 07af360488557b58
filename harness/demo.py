"""`harness demo`: the whole toolkit end to end on a CPU in minutes, with nothing downloaded.

Owns `DemoSize` (the two sizes, `FULL` and `QUICK`, in one place), `DemoResult`, `run_demo` and
`main(argv)` (`harness demo [--out DIR] [--quick]`). Every step is the real command, called
in-process with the arguments a user would type:

1. sources: miniature, format-exact copies of every raw dataset (`builders.miniature`);
2. splits: train / val / test of the nine tasks with the real builders (`build-task all`);
3. de-duplication of train / val against the miniature BLINK and PixMo test sets (`dedup`, with
   the random-weight tiny CLIP, so nothing is downloaded);
4. Table 1 on a tiny random-initialised backbone: zero-shot, direct SFT and LIVR on each task
   (`harness run --table 1 --executor livr`), written as Markdown / CSV / LaTeX / JSON / PNG;
5. the usage diagnostics of one LIVR run (`harness diagnose`).

Each step's own output goes to `<out>/logs/<step>.log`; the terminal gets one line per step, then
Table 1 and the diagnostics summary, framed by a plain statement that the numbers come from a tiny
random-initialised model on synthetic data (they show the pipeline works, nothing about LIVR).

Layout of `<out>` (default `livr-demo/`): sources/, built/ (with dedup-blink/ and dedup-pixmo/
reports), runs/ (the run store; runs/table1/report/ holds every report format), table1.md,
table1.png, table1.txt, diagnostics/, logs/, README.md. The folder must be new or empty;
`--fresh` replaces an earlier demo folder (one holding the demo's marker file, never another).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

BACKBONE = "tiny-qwen2.5-vl"  # the paper's first backbone, at toy size
DIAGNOSE_TASK = "localization"  # the task of the paper's usage diagnostics (Sec. 4.4.1)
DEFAULT_OUT = Path("livr-demo")
MARKER = ".livr-demo"  # written first: `--fresh` deletes only folders that hold it

DISCLAIMER = (
    "NOTE: every number below comes from a TINY RANDOM-INITIALISED model ({backbone}, built in "
    "code, no pretrained weights) trained for {epochs} epochs at lr {lr:g} on {train} synthetic "
    "examples per task drawn from miniature copies of the datasets. It shows that the pipeline "
    "runs end to end; it says nothing about LIVR's accuracy. The paper's numbers need the real "
    "backbones and datasets: build-task, dedup, then `harness run --table 1` on a GPU."
)

# A model this small learns little of the nine tasks from ten examples; the mechanism check is
# where a tiny model does learn, and shows the latents carrying the image.
NEXT = ("To see LIVR's latents carry the image on a task a tiny model can learn, run "
        "`harness mechanism` (about 2 minutes on 2 CPU cores).")


@dataclass(frozen=True)
class DemoSize:
    """Examples per task and split, and training epochs.

    The splits are capped by the miniatures: the smallest holds 3 validation examples (NIGHTS)
    and 5 test examples (the BLINK miniature's rows per task), so larger requests would fail.
    """

    train: int
    val: int
    test: int
    epochs: int  # total per trained method; LIVR keeps its 4:6 stage split (harness --epochs)
    # harness --lr. The paper's 1e-4 fine-tunes a pretrained model; a random-initialised tiny one
    # needs a larger step to learn even the answer format in 10 epochs of 2 updates (with 1e-4
    # every answer stayed unparseable; with 3e-3 the two-option tasks answer in format, the
    # four-option tasks and counting still do not).
    lr: float = 3e-3


# Full: about four minutes on 2 CPU cores (27 cells; measured 4:11, 1.4 GB peak RSS). Quick: CI,
# well under three minutes.
FULL = DemoSize(train=10, val=3, test=5, epochs=10)
QUICK = DemoSize(train=4, val=2, test=3, epochs=2)


@dataclass
class Step:
    name: str
    rc: int
    seconds: float
    log: str


@dataclass
class DemoResult:
    out: Path
    size: DemoSize
    steps: list[Step] = field(default_factory=list)
    table: str = ""  # Table 1 as printed
    diagnostics: str = ""  # the diagnostics summary ("" when skipped)

    @property
    def ok(self) -> bool:
        return all(s.rc == 0 for s in self.steps)


def _disclaimer(size: DemoSize) -> str:
    return DISCLAIMER.format(backbone=BACKBONE, epochs=size.epochs, lr=size.lr, train=size.train)


def _step(result: DemoResult, name: str, action: Callable[[], int], say: Callable[[str], None],
          ok_codes: tuple[int, ...] = (0,)) -> int:
    """Run one step with its stdout/stderr in logs/<name>.log; report one line."""
    log = result.out / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle, contextlib.redirect_stdout(handle), \
            contextlib.redirect_stderr(handle):
        try:
            rc = action()
        except Exception:  # noqa: BLE001 - a failed step is reported, its traceback logged
            import traceback

            traceback.print_exc()
            rc = 1
    seconds = time.perf_counter() - started
    result.steps.append(Step(name, 0 if rc in ok_codes else rc, round(seconds, 1), str(log)))
    state = "ok" if rc in ok_codes else f"FAILED (exit {rc}; see {log})"
    say(f"[{seconds:6.1f} s] {name}: {state}")
    return rc


def _sources(out: Path) -> int:
    from builders.miniature import write_all

    for source, path in write_all(out / "sources").items():
        print(f"{source}: {path}")
    return 0


def _build(out: Path, size: DemoSize) -> int:
    from builders.cli import main as build_task

    rc = 0
    for split in ("train", "val", "test"):
        n = getattr(size, split)
        rc = max(rc, build_task(["all", "--split", split, "--source-root", str(out / "sources"),
                                 "--out", str(out / "built"), "--n", str(n), "--no-progress"]))
    return rc


def _dedup(out: Path, against: str) -> int:
    from dedup.cli import main as dedup

    return dedup(["--against", against, "--built", str(out / "built"),
                  "--source-root", str(out / "sources"), "--model", "tiny",
                  "--pretrained", "none", "--device", "cpu", "--no-progress"])


def _table(out: Path, size: DemoSize) -> int:
    from harness.cli import main as harness

    return harness(["run", "--table", "1", "--backbones", BACKBONE,
                    "--built", str(out / "built"), "--runs", str(out / "runs"),
                    "--epochs", str(size.epochs), "--lr", str(size.lr), "--executor", "livr",
                    "--executor-opt", "device=cpu", "--executor-opt", "progress=false"])


def _cell_dir(out: Path, task: str, method: str) -> Path:
    from harness.store import RunStore

    return RunStore(out / "runs").cell_dir(("table1", BACKBONE, task, method))


def _diagnose(out: Path, size: DemoSize) -> int:
    from harness.cli import main as harness

    return harness(["diagnose", str(_cell_dir(out, DIAGNOSE_TASK, "livr")),
                    "--out", str(out / "diagnostics"), "--overlays", "2",
                    "--tsne-examples", str(size.test), "--executor-opt", "device=cpu"])


def _collect(out: Path, result: DemoResult) -> None:
    """Copy Table 1 next to the other outputs and read back what gets printed."""
    report = out / "runs" / "table1" / "report"
    for name, target in (("report.md", "table1.md"), ("chart.png", "table1.png"),
                         ("report.txt", "table1.txt")):
        if (report / name).is_file():
            shutil.copyfile(report / name, out / target)
    if (out / "table1.txt").is_file():
        result.table = (out / "table1.txt").read_text(encoding="utf-8")
    diagnostics = out / "diagnostics" / "diagnostics.json"
    if diagnostics.is_file():
        from harness.diagnose import format_summary

        result.diagnostics = format_summary(json.loads(diagnostics.read_text(encoding="utf-8")))


def _readme(result: DemoResult) -> str:
    steps = "\n".join(f"| {s.name} | {'ok' if s.rc == 0 else f'exit {s.rc}'} | {s.seconds} | "
                      f"{Path(s.log).relative_to(result.out)} |" for s in result.steps)
    return (
        "# LIVR toolkit demo\n\n"
        f"{_disclaimer(result.size)}\n\n"
        f"Sizes: {json.dumps(asdict(result.size))}\n\n"
        "| step | status | seconds | log |\n|---|---|---|---|\n" + steps + "\n\n"
        "- `table1.md`, `table1.png`, `table1.txt`: Table 1 (every format in "
        "`runs/table1/report/`)\n"
        "- `diagnostics/`: latents removed, bottleneck at test, attention, overlays, t-SNE\n"
        "- `built/`: the splits, with `dedup-blink/` and `dedup-pixmo/` reports\n"
        "- `runs/`: the run store (configs, predictions, checkpoints per cell)\n"
        "- `sources/`: the miniature raw datasets\n\n"
        f"{NEXT}\n"
    )


def run_demo(out: Path = DEFAULT_OUT, size: DemoSize = FULL,
             say: Callable[[str], None] = print) -> DemoResult:
    """Run every step into `out`; later steps run even if an earlier one partly failed, as long
    as what they need exists (a table with a failed cell is still reported)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by harness demo; --fresh may delete this folder\n")
    result = DemoResult(out, size)
    say(_disclaimer(size))
    say(f"demo folder: {out}")
    _step(result, "sources", lambda: _sources(out), say)
    if _step(result, "build", lambda: _build(out, size), say) != 0:
        return _finish(result, say)
    # dedup exits 1 when something needs a person (reported in its log); the data is still valid.
    for against in ("blink", "pixmo"):
        _step(result, f"dedup-{against}", lambda a=against: _dedup(out, a), say, ok_codes=(0, 1))
    _step(result, "table1", lambda: _table(out, size), say)
    if _diagnostics_available() and (_cell_dir(out, DIAGNOSE_TASK, "livr") / "metrics.json"
                                     ).is_file():
        _step(result, "diagnose", lambda: _diagnose(out, size), say)
    return _finish(result, say)


def _diagnostics_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("harness.diagnose") is not None


def _finish(result: DemoResult, say: Callable[[str], None]) -> DemoResult:
    _collect(result.out, result)
    (result.out / "README.md").write_text(_readme(result), encoding="utf-8")
    if result.table:
        say("")
        say(result.table.rstrip())
    if result.diagnostics:
        say("")
        say(result.diagnostics)
    say("")
    say(_disclaimer(result.size))
    say(f"outputs: {result.out}/README.md, table1.md, table1.png, diagnostics/")
    say(NEXT)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="harness demo",
        description="Run the toolkit end to end on miniature synthetic data with a tiny "
                    "random-initialised backbone (CPU, a few minutes, nothing downloaded).",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"demo folder (default: {DEFAULT_OUT}/)")
    parser.add_argument("--quick", action="store_true",
                        help=f"reduced size for CI: {asdict(QUICK)} instead of {asdict(FULL)}")
    parser.add_argument("--fresh", action="store_true",
                        help="replace the demo folder of an earlier demo run")
    args = parser.parse_args(argv)
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        if not (args.fresh and (out / MARKER).is_file()):
            why = ("is not a demo folder (no " + MARKER + "); choose another --out"
                   if args.fresh else "is not empty; use --fresh to replace an earlier demo, or "
                   "another --out")
            print(f"harness demo: {out} {why}", file=sys.stderr)
            return 2
        shutil.rmtree(out)
    result = run_demo(args.out, QUICK if args.quick else FULL)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

