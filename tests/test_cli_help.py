"""The three tools' command lines explain themselves and answer at once.

* `--help` of every tool and subcommand exits 0 without importing the model stack (torch,
  transformers, open_clip, datasets, peft): each runs in a fresh interpreter, which reports the
  modules it holds. (How long that takes is a benchmark's question, not a test's: the README
  gives the measured times.)
* every subcommand has a description and every option and argument a help text;
* the options the tools share mean the same thing under the same name, and `--version` prints
  the installed version.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from builders import package_version

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "open_clip", "datasets", "peft")
HARNESS = ("run", "report", "methods", "train", "eval", "diagnose", "doctor", "rescore",
           "export", "export-predictions", "export-lmms-eval", "export-vlmevalkit", "demo",
           "mechanism")
COMMANDS = [("builders.cli",), ("dedup.cli",), ("dedup.cli", "calibrate"), ("harness.cli",),
            *(("harness.cli", c) for c in HARNESS)]

PROBE = """
import json, runpy, sys
heavy, module, args = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
sys.argv = [module, *args, "--help"]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = None
sys.stdout = sys.__stdout__
print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
"""


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_imports_no_model_code(command):
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HEAVY), *command], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "loaded": []}, done.stderr[-2000:]


def _parsers() -> dict[str, argparse.ArgumentParser]:
    from builders.cli import build_parser
    from dedup.cli import build_parser as dedup_parser
    from dedup.cli import calibrate_parser
    from harness.cli import _parser
    from harness.demo import _parser as demo_parser
    from harness.mechanism import _parser as mechanism_parser

    parsers = {"build-task": build_parser(), "dedup": dedup_parser(),
               "dedup calibrate": calibrate_parser(), "harness": _parser(),
               "harness demo": demo_parser(), "harness mechanism": mechanism_parser()}
    sub = next(a for a in parsers["harness"]._actions
               if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        parsers.setdefault(f"harness {name}", parser)
    return parsers


def test_every_command_and_option_has_help():
    parsers = _parsers()
    assert {f"harness {c}" for c in HARNESS} <= set(parsers)
    for name, parser in parsers.items():
        if name not in ("harness demo", "harness mechanism") or parser.prog == name:
            assert parser.description, name
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                assert all(c.help for c in action._choices_actions), name
                continue
            assert action.help and action.help != argparse.SUPPRESS or \
                action.dest == "help", f"{name}: {action.option_strings or action.dest}"


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_shared_options_have_one_name_and_one_meaning():
    parsers = _parsers()
    for name in ("build-task", "dedup", "harness run", "harness train"):
        action = _option(parsers[name], "--no-progress")
        assert action is not None and action.const is True and action.default is False, name
    for name in ("dedup", "harness run", "harness train", "harness eval", "harness diagnose",
                 "harness doctor", "harness export"):
        assert _option(parsers[name], "--device") is not None, name
    for name in ("build-task", "harness run", "harness train", "harness report"):
        assert _option(parsers[name], "--seed").type is int, name
    for name in ("build-task", "dedup", "harness train", "harness diagnose", "harness export",
                 "harness export-predictions", "harness export-lmms-eval",
                 "harness export-vlmevalkit", "harness demo"):
        assert _option(parsers[name], "--out") is not None, name  # what the command writes
    for name in ("dedup", "harness run", "harness train", "harness eval",
                 "harness export-lmms-eval"):
        assert _option(parsers[name], "--built").type is Path, name  # the built splits read
    assert _option(parsers["dedup"], "--report").dest == "report"  # the older name still works
    lrs = [a for a in parsers["harness train"]._actions if "--lr" in a.option_strings]
    assert len(lrs) == 1


@pytest.mark.parametrize("module", ["builders.cli", "dedup.cli", "harness.cli"])
def test_version(module):
    done = subprocess.run([sys.executable, "-m", module, "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.split()[-1] == package_version()


def _readme_commands() -> list[list[str]]:
    """Every `build-task` / `dedup` / `harness` command in the README's bash blocks, with
    `[optional parts]` included and shell loop variables filled in."""
    import re
    import shlex

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line.strip())
            found = re.search(r"(?:^|do |; )((?:build-task|dedup|harness) [^;]*)", line)
            if found:
                command = re.sub(r"\[([^\]]*)\]", r"\1", found.group(1))
                out.append(shlex.split(command.replace("$s", "train")))
    return out


def test_every_readme_command_parses_with_its_tool():
    parsers = _parsers()
    commands = _readme_commands()
    assert len(commands) > 25
    for argv in commands:
        tool, args = argv[0], argv[1:]
        name = f"{tool} {args[0]}" if f"{tool} {args[0]}" in parsers else tool
        rest = args[1:] if name != tool else args
        try:
            parsers[name].parse_args(rest)
        except SystemExit:
            raise AssertionError(f"README: {' '.join(argv)}") from None
