"""`harness export-predictions`: lmms-eval samples JSONL and VLMEvalKit xlsx/TSV of a run,
with their columns, task and dataset names, byte-identical reruns and named errors."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from builders.io import iter_records, split_dir
from builders.registry import load_registry
from harness.cli import main
from harness.config import load_table
from harness.executor import ConstantExecutor
from harness.export_predictions import (
    ExportError,
    export_names,
    export_predictions,
)
from harness.plan import plan_cells
from harness.runner import run_cells
from harness.store import RunStore


def _run(built: Path, root: Path) -> Path:
    """A zero-shot cell of localization answered by the constant executor ("(A)")."""
    table = load_table("3", {"tasks": ["localization"], "methods": ["zero_shot"]})
    ex = ConstantExecutor("A")
    cells = plan_cells(table, built, {"name": ex.name, **ex.fingerprint()})
    store = RunStore(root)
    run_cells(cells, store, ex, built, lambda _: None)
    return store.cell_dir(cells[0].key)


def test_task_and_dataset_names():
    registry = load_registry()
    names = {t: export_names(registry.resolve(t))
             for t in ("localization", "counting", "visual_correspondence", "art_style")}
    assert names == {
        "localization": ("blink_object_localization", "BLINK_Object_Localization"),
        "counting": ("pixmo_count", "PixMo_Count"),
        "visual_correspondence": ("livr_visual_correspondence", "LIVR_visual_correspondence"),
        "art_style": ("blink_art_style", "BLINK_Art_Style"),
    }


def test_export_columns_and_determinism(built: Path, tmp_path: Path):
    cell = _run(built, tmp_path / "runs")
    records = list(iter_records(split_dir(built, "localization", "test")))
    out = tmp_path / "export"
    paths = export_predictions(cell, out, built=built)
    model = "qwen3-vl-4b_zero_shot"
    assert [p.relative_to(out).as_posix() for p in paths] == [
        f"lmms-eval/{model}/samples_blink_object_localization.jsonl",
        f"vlmevalkit/{model}/{model}_BLINK_Object_Localization.tsv",
        f"vlmevalkit/{model}/{model}_BLINK_Object_Localization.xlsx",
    ]
    samples = [json.loads(x) for x in paths[0].read_text().splitlines()]
    assert [s["doc_id"] for s in samples] == list(range(len(records)))
    first = samples[0]
    assert set(first) == {"doc_id", "target", "filtered_resps", "input", "doc_hash", "livr_acc"}
    assert first["target"] == records[0].answer and first["filtered_resps"] == "(A)"
    assert first["input"] == records[0].prompt  # the default protocol sends the prompt as is
    assert first["livr_acc"] == {
        "id": records[0].idx, "gt_content": records[0].answer.strip("()"), "pred_parsed": "A",
        "pred": "(A)", "sub_task": "Object Localization",
        "is_correct": records[0].answer == "(A)"}
    assert len(first["doc_hash"]) == 64
    with paths[1].open(newline="") as handle:
        table = list(csv.reader(handle, delimiter="\t"))
    assert table[0] == ["index", "id", "question", "A", "B", "answer", "category",
                        "prediction", "extracted", "hit"]
    assert table[1] == ["0", records[0].idx, records[0].question, "Box A", "Box B",
                        records[0].answer.strip("()"), "Object Localization", "(A)", "A",
                        str(int(records[0].answer == "(A)"))]
    sheet = load_workbook(paths[2]).active
    xlsx = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    assert xlsx == table  # the same rows in both formats
    before = {p: p.read_bytes() for p in paths}
    export_predictions(cell, out, built=built)
    assert {p: p.read_bytes() for p in paths} == before  # byte-identical, xlsx included
    with zipfile.ZipFile(paths[2]) as xlsx_zip:  # ... at any time of day: no clock inside
        assert {i.date_time for i in xlsx_zip.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = xlsx_zip.read("docProps/core.xml").decode()
    assert core.count("1980-01-01T00:00:00Z") == 2  # created and modified


def test_export_without_built_data_and_via_the_cli(built: Path, tmp_path: Path, capsys):
    cell = _run(built, tmp_path / "runs")
    assert main(["export-predictions", str(cell), "--format", "lmms-eval"]) == 0
    written = cell / "export" / "lmms-eval" / "qwen3-vl-4b_zero_shot"
    sample = json.loads((written / "samples_blink_object_localization.jsonl").read_text()
                        .splitlines()[0])
    assert "input" not in sample  # no built data recorded by this executor: no prompt to give
    assert not (cell / "export" / "vlmevalkit").exists()
    assert "written:" in capsys.readouterr().out


def test_export_errors_are_named(tmp_path: Path, capsys):
    with pytest.raises(ExportError, match="is not a scored run folder"):
        export_predictions(tmp_path, tmp_path / "out")
    assert main(["export-predictions", str(tmp_path)]) == 2
    assert "not a scored run folder" in capsys.readouterr().err
