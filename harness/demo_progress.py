"""Live progress for `harness demo`: every step's output into its log, a status line with an ETA on
the terminal.

Owns `StepSink` and `Ticker`.

`StepSink` is ONE text stream for the whole demo. Each step's stdout and stderr are redirected
to it, and it writes complete lines into the current step's log file. Because it outlives every
step, a logging handler created during a step (open_clip's `logging.warning` installs one on the
root logger; transformers installs its own) binds to the sink and never to a log file that a
later step has closed: that was the `--- Logging error --- ValueError: I/O operation on closed
file` at the top of the old logs. A segment ended by a carriage return is a progress-bar update
(tqdm redraws with `\\r`): it becomes the step's live status and is not logged, so logs keep one
final line per bar.

`Ticker` shows, while a step runs, its elapsed time, an ETA and the live status of each output
source (the table step runs in several processes): redrawn in place twice a second on a
terminal, else one line every `every_s` seconds so no step is silent for long. The ETA of a step
is its expected duration (measured on 2 idle cores, in `harness.demo`) scaled by how fast the
earlier steps ran against theirs; for the steps that report units (sources, builds, cells) it is
the elapsed time per unit done times the units left, once a unit is done.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path
from typing import IO, Any

# A line of `harness run` that starts a cell ("[2/3] table1/tiny-llava/counting/livr ..."):
# kept as the context of the source's later progress-bar updates.
CELL_LINE = re.compile(r"^\[\d+/\d+\] \S+")
# What a tqdm bar says, in short: "stage 1 (bottleneck): 40%|###| 51/128 [00:10<00:15, ...]".
TQDM = re.compile(r"^(?P<desc>.*?):?\s*(?P<pct>\d+)%\|.*?\|\s*(?P<n>[\d.]+\w?)/(?P<total>[\d.]+\w?)"
                  r"\s*\[(?P<elapsed>[^<\]]*)(?:<(?P<left>[^,\]]*))?")


def short_status(text: str) -> str:
    """A tqdm update as "desc n/total, left" (other text unchanged, stripped)."""
    m = TQDM.match(text.strip())
    if not m:
        return text.strip()
    left = m["left"]
    tail = f", {left} left" if left and left != "?" else ""
    return f"{m['desc'].strip()} {m['n']}/{m['total']}{tail}".strip()


class StepSink:
    """The demo's one output stream (see the module docstring); file-like for `print`, logging,
    warnings and tqdm."""

    def __init__(self, fallback: IO[str]) -> None:
        self._lock = threading.Lock()
        self._log: IO[str] | None = None
        self._fallback = fallback  # between steps (a late logging call) text goes here
        self._pending: dict[str, str] = {}
        self.context: dict[str, str] = {}  # source -> its last cell line
        self.live: dict[str, str] = {}  # source -> its last progress update

    # --- a step's log ---------------------------------------------------------------------

    def open_step(self, log: Path) -> None:
        with self._lock:
            self._log = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed in close_step
            self._pending.clear()
            self.context.clear()
            self.live.clear()

    def close_step(self) -> None:
        with self._lock:
            if self._log is None:
                return
            for source, rest in self._pending.items():
                if rest.strip():
                    self._log.write(self._prefix(source) + rest + "\n")
            self._pending.clear()
            self._log.close()
            self._log = None

    # --- the stream -------------------------------------------------------------------------

    def write(self, text: str, source: str = "") -> int:
        with self._lock:
            if self._log is None:
                self._fallback.write(text)
                return len(text)
            buf = self._pending.get(source, "")
            if buf and text[:1] not in ("\r", "\n") and TQDM.match(buf.strip()):
                buf = ""  # a bar's update, already shown live, interrupted by other output
            buf += text
            while True:
                cut = min((i for i in (buf.find("\n"), buf.find("\r")) if i >= 0), default=-1)
                if cut < 0:
                    break
                segment, ending, buf = buf[:cut], buf[cut], buf[cut + 1:]
                if not segment.strip():
                    continue
                if ending == "\n":
                    self._log.write(self._prefix(source) + segment + "\n")
                    if CELL_LINE.match(segment):
                        # "[2/3] table1/tiny-llava/counting/livr (attempt 1)" -> "[2/3]
                        # counting/livr": the table and backbone are the same in every line
                        count, key = segment.split(" (")[0].split(" ", 1)
                        self.context[source] = f"{count} {'/'.join(key.split('/')[-2:])}"
                        self.live.pop(source, None)
                    elif TQDM.match(segment.strip()):
                        self.live.pop(source, None)  # a finished bar
                else:
                    self.live[source] = short_status(segment)
            self._pending[source] = buf
            if buf.strip() and TQDM.match(buf.strip()):
                self.live[source] = short_status(buf)
            return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.flush()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:
        return "utf-8"

    @staticmethod
    def _prefix(source: str) -> str:
        return f"[{source}] " if source else ""

    def status(self) -> str:
        """The live status of every source: context and progress bar."""
        with self._lock:
            sources = sorted(set(self.context) | set(self.live))
            parts = []
            for source in sources:
                what = " ".join(x for x in (self.context.get(source, ""),
                                            self.live.get(source, "")) if x)
                parts.append(f"{source}: {what}" if source else what)
            return " | ".join(parts)


def clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Ticker:
    """The terminal status of the running step (see the module docstring)."""

    def __init__(self, out: IO[str], sink: StepSink, tty: bool, every_s: float = 10.0,
                 say_lock: threading.Lock | None = None) -> None:
        self.out, self.sink, self.tty, self.every_s = out, sink, tty, every_s
        self.lock = say_lock or threading.Lock()
        self.expected_done = 0.0  # expected seconds of the finished steps ...
        self.actual_done = 0.0  # ... and what they took
        self._step: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn = False

    # --- steps ------------------------------------------------------------------------------

    def start(self, name: str, expected_s: float, units: int = 0) -> None:
        self._step = {"name": name, "expected": expected_s, "units": units, "done": 0,
                      "what": "", "started": time.perf_counter()}
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def advance(self, what: str = "", units: int = 1) -> None:
        """`units` more of the step's units are done; `what` is being worked on now."""
        if self._step is not None:
            self._step["done"] += units
            self._step["what"] = what

    def stop(self) -> float:
        """End the step's status; returns its seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        step, self._step = self._step, None
        seconds = time.perf_counter() - step["started"] if step else 0.0
        if step:
            self.expected_done += step["expected"]
            self.actual_done += seconds
        self._clear()
        return seconds

    @property
    def speed(self) -> float:
        """Seconds taken per second expected so far, at least 1: a loaded machine stretches
        the estimates, but short steps running fast say little about training."""
        if self.expected_done <= 0:
            return 1.0
        return max(1.0, self.actual_done / self.expected_done)

    def eta(self) -> float | None:
        """Seconds left in the running step (None when it has run past every estimate)."""
        step = self._step
        if step is None:
            return None
        elapsed = time.perf_counter() - step["started"]
        if step["units"] and step["done"]:
            return elapsed / step["done"] * max(0, step["units"] - step["done"])
        left = step["expected"] * self.speed - elapsed
        return left if left > 0 else None

    def line(self) -> str:
        step = self._step
        if step is None:
            return ""
        elapsed = time.perf_counter() - step["started"]
        eta = self.eta()
        left = f"~{clock(eta)} left" if eta is not None else "taking longer than estimated"
        units = f" {step['done']}/{step['units']}" if step["units"] else ""
        what = "; ".join(x for x in (step["what"], self.sink.status()) if x)
        return f"  {step['name']}{units}: {clock(elapsed)} elapsed, {left}" + (
            f"; {what}" if what else "")

    # --- drawing ----------------------------------------------------------------------------

    def _run(self) -> None:
        period = 0.5 if self.tty else self.every_s
        while not self._stop.wait(period):
            text = self.line()
            with self.lock:
                if self.tty:
                    width = shutil.get_terminal_size((100, 20)).columns - 1
                    self.out.write("\r" + text[:width].ljust(width))
                    self._drawn = True
                else:
                    self.out.write(text + "\n")
                self.out.flush()

    def _clear(self) -> None:
        if self.tty and self._drawn:
            with self.lock:
                width = shutil.get_terminal_size((100, 20)).columns - 1
                self.out.write("\r" + " " * width + "\r")
                self.out.flush()
            self._drawn = False
