"""The zero-shot protocol: table keys and their errors, what each instruction sends, hashes that
change only for the cells whose protocol changes, and the executor / eval plumbing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builders.registry import load_registry
from harness.cells import CellConfig
from harness.config import load_table
from harness.errors import ConfigError, ProtocolError
from harness.executor import CellData
from harness.methods import get_method
from harness.options import ModelOptions
from harness.plan import plan_cells
from harness.protocol import BLINK_DISCLAIMER, LMMS_EVAL_COUNT, LMMS_EVAL_MCQ, ZeroShotProtocol
from harness.run_folder import read_cell
from harness.samples import generation_options, generation_samples
from harness.store import RunStore
from tests.harness.image_splits import write_image_splits

ORACLE = {"name": "oracle"}
TABLES = Path(__file__).resolve().parents[2] / "harness" / "tables"


def _table(tmp_path: Path, extra: str) -> Path:
    """Table 3 with `extra` TOML appended, as a file of its own."""
    path = tmp_path / "custom.toml"
    path.write_text((TABLES / "table3.toml").read_text() + "\n" + extra)
    return path


def test_defaults_keep_the_hash_cells_had_before_the_protocol():
    # Literal hashes computed with harness/cells.py as it was before the protocol existed: a
    # run store made then is still found, and `harness run` does not call it a conflict.
    def cell(method: str) -> CellConfig:
        trained = method != "zero_shot"
        return CellConfig(
            table="table1", backbone="qwen3-vl-4b", task="localization",
            method=get_method(method), train_tasks=("localization",) if trained else (),
            eval_tasks=("localization",), data={"localization/test": "d" * 64},
            executor={"name": "livr", "max_new_tokens": 16})

    assert cell("zero_shot").hash == "3b2200261f3319f3"
    assert cell("livr").hash == "c7b3f8db695c6077"
    assert "zero_shot" not in cell("zero_shot").identity()
    assert cell("zero_shot").to_json()["zero_shot"] == {
        "instruction": "none", "max_new_tokens": None, "system_prompt": None}


def test_a_table_protocol_changes_only_its_zero_shot_cells(built: Path, tmp_path: Path):
    base = {c.key[2:]: c.hash for c in plan_cells(load_table("3"), built, ORACLE)}
    path = _table(tmp_path, '[zero_shot]\ninstruction = "lmms_eval"\nmax_new_tokens = 256\n')
    table = load_table(path)
    assert table.zero_shot == ZeroShotProtocol("lmms_eval", 256)
    changed = {c.key[2:]: c for c in plan_cells(table, built, ORACLE)}
    for key, cell in changed.items():
        if key[1] == "zero_shot":
            assert cell.hash != base[key]
            assert cell.config.identity()["zero_shot"] == {
                "instruction": "lmms_eval", "max_new_tokens": 256}
        else:  # a trained method is asked as it was trained
            assert cell.hash == base[key] and cell.config.protocol == ZeroShotProtocol()
    # The default written out explicitly is the default: no hash moves.
    same = load_table(_table(tmp_path, '[zero_shot]\ninstruction = "none"\n'))
    assert {c.key[2:]: c.hash for c in plan_cells(same, built, ORACLE)} == base


@pytest.mark.parametrize(("toml", "message"), [
    ('[zero_shot]\ninstruction = "short"\n', "instruction must be one of none, blink, lmms_eval"),
    ("[zero_shot]\nmax_new_tokens = 0\n", "max_new_tokens must be an integer >= 1"),
    ("[zero_shot]\nsystem = 'x'\n", ("unknown key(s) system; valid keys: instruction, "
                                    "max_new_tokens, system_prompt")),
    ("[zero_shot]\nsystem_prompt = 3\n", "system_prompt must be a string"),
])
def test_bad_protocols_are_named(tmp_path: Path, toml: str, message: str):
    with pytest.raises(ConfigError) as err:
        load_table(_table(tmp_path, toml))
    assert message in str(err.value) and "[zero_shot]" in str(err.value)


def test_what_each_instruction_sends():
    registry = load_registry()
    jigsaw, loc, count = (registry.resolve(t) for t in ("jigsaw", "localization", "counting"))
    assert ZeroShotProtocol().prompt("P", jigsaw) == "P"
    blink = ZeroShotProtocol("blink")
    assert blink.prompt("P", jigsaw) == BLINK_DISCLAIMER + "P"  # BLINK's runner: 3 configs
    assert blink.prompt("P", loc) == "P" and blink.prompt("P", count) == "P"
    lmms = ZeroShotProtocol("lmms_eval")
    assert lmms.prompt("P", loc) == "P" + LMMS_EVAL_MCQ
    assert LMMS_EVAL_MCQ == "\nAnswer with the option's letter from the given choices directly."
    assert lmms.prompt("P", count) == "P" + LMMS_EVAL_COUNT
    with pytest.raises(ProtocolError):
        ZeroShotProtocol(max_new_tokens=True)  # TOML `true` is not a budget


def test_executor_plumbing(tmp_path: Path):
    built = write_image_splits(tmp_path / "built", ["localization", "counting"], {"test": 3})
    protocol = ZeroShotProtocol("lmms_eval", 64, "Be brief.")
    tasks = ("localization", "counting")
    zero = CellConfig("t", "qwen3-vl-4b", "mix", get_method("zero_shot"), (), tasks,
                      protocol=protocol)
    samples = generation_samples(zero, CellData(built, zero))
    assert [s.id for s in samples] == [r.idx for r in CellData(built, zero).test()]
    assert [s.system for s in samples] == ["Be brief."] * 6
    assert samples[0].prompt.endswith(LMMS_EVAL_MCQ) and samples[-1].prompt.endswith(
        LMMS_EVAL_COUNT)
    assert samples[0].answer is None  # generation samples carry no answer
    options = ModelOptions()
    assert generation_options(zero, options).max_new_tokens == 64
    default = CellConfig("t", "qwen3-vl-4b", "mix", get_method("zero_shot"), (), tasks)
    plain = generation_samples(default, CellData(built, default))
    assert [s.prompt for s in plain] == [r.prompt for r in CellData(built, default).test()]
    assert {s.system for s in plain} == {None}
    assert generation_options(default, options) is options


def test_run_folders_read_their_protocol_back(tmp_path: Path):
    cell = CellConfig("train", "qwen3-vl-4b", "localization", get_method("zero_shot"), (),
                      ("localization",), protocol=ZeroShotProtocol("blink", 32))
    store = RunStore(tmp_path / "runs")
    store.begin(cell)
    folder = store.cell_dir(cell.key)
    assert read_cell(folder) == cell  # rebuilt to the same hash, protocol included
    stored = json.loads((folder / "config.json").read_text())
    stored["zero_shot"]["instruction"] = "loud"
    (folder / "config.json").write_text(json.dumps(stored))
    with pytest.raises(ConfigError, match="instruction must be one of"):
        read_cell(folder)
