"""The demo's output plumbing: logs get complete lines and not progress-bar redraws, a logging
handler made during one step still writes (into the current log) after that step's file is
closed, and the ticker prints an ETA line while a step runs."""

from __future__ import annotations

import io
import logging
import time

from harness.demo_progress import StepSink, Ticker, short_status


def test_lines_go_to_the_step_log_and_bar_updates_to_the_status(tmp_path):
    sink = StepSink(io.StringIO())
    sink.open_step(tmp_path / "a.log")
    sink.write("first line\n")
    sink.write("\rstage 1 (bottleneck):  10%|#         | 5/50 [00:01<00:09,  5.0it/s]")
    sink.write("\rstage 1 (bottleneck):  20%|##        | 10/50 [00:02<00:08,  5.0it/s]")
    assert sink.status() == "stage 1 (bottleneck) 10/50, 00:08 left"
    sink.write("[2/3] table1/tiny-llava/counting/livr (attempt 1)\n", source="shard 1")
    sink.write("\rstage 2 (causal):  50%|#####     | 3/6 [00:01<00:01]", source="shard 1")
    assert "shard 1: [2/3] counting/livr stage 2 (causal) 3/6, 00:01 left" in sink.status()
    sink.write("a warning\n")  # interrupts the bar: the bar's update is not logged with it
    sink.close_step()
    log = (tmp_path / "a.log").read_text()
    assert log == ("first line\n[shard 1] [2/3] table1/tiny-llava/counting/livr (attempt 1)\n"
                   "a warning\n[shard 1] stage 2 (causal):  50%|#####     | 3/6 [00:01<00:01]\n")


def test_a_handler_made_during_one_step_writes_into_the_next_steps_log(tmp_path):
    """The old demo redirected each step to its own file: a handler created in step 1 (open_clip
    calls logging.warning, which installs one on sys.stderr) wrote to the closed file in step 2:
    '--- Logging error --- ValueError: I/O operation on closed file.'"""
    fallback = io.StringIO()
    sink = StepSink(fallback)
    logger = logging.getLogger("test_demo_progress")
    logger.propagate = False
    sink.open_step(tmp_path / "one.log")
    handler = logging.StreamHandler(sink)  # bound to whatever sys.stderr was: the sink
    logger.addHandler(handler)
    try:
        logger.warning("during step one")
        sink.close_step()
        sink.open_step(tmp_path / "two.log")
        logger.warning("during step two")
        sink.close_step()
        logger.warning("between steps")
    finally:
        logger.removeHandler(handler)
    assert (tmp_path / "one.log").read_text() == "during step one\n"
    assert (tmp_path / "two.log").read_text() == "during step two\n"
    assert fallback.getvalue() == "between steps\n"


def test_the_ticker_prints_elapsed_and_eta_lines(tmp_path):
    out = io.StringIO()
    sink = StepSink(io.StringIO())
    sink.open_step(tmp_path / "s.log")
    ticker = Ticker(out, sink, tty=False, every_s=0.05)
    ticker.start("table1", expected_s=60.0)
    sink.write("\rstage 1 (bottleneck):  10%|#  | 5/50 [00:01<00:09]")
    time.sleep(0.3)
    seconds = ticker.stop()
    sink.close_step()
    lines = out.getvalue().splitlines()
    assert lines and seconds >= 0.3
    assert lines[-1].startswith("  table1: 0:00 elapsed, ~1:00 left; stage 1 (bottleneck) 5/50")
    # Units: the ETA is the time per unit done times the units left.
    ticker.start("build", expected_s=1000.0, units=4)
    time.sleep(0.1)
    ticker.advance("counting/train", units=2)
    eta = ticker.eta()
    assert eta is not None and 0.09 < eta < 1.0
    assert "build 2/4:" in ticker.line() and "counting/train" in ticker.line()
    ticker.stop()


def test_short_status_keeps_other_text():
    assert short_status("  plain text ") == "plain text"
    assert short_status("images: 100%|##########| 8/8 [00:00<00:00, 12.3img/s]") == "images 8/8, 00:00 left"
