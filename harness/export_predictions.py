"""A run's saved generations in the files lmms-eval and VLMEvalKit write, to compare scorers.

Owns `export_predictions`, `export_names`, `FORMATS` and `ExportError`. It reads a scored folder (predictions.jsonl + metrics.json + config.json: a cell,
a `harness train` run, or its eval/<split>/ results) and, when the built split is at hand, the
records' questions and prompts; it never runs a model.

lmms-eval (`--log_samples`): one `<model>/samples_<task>.jsonl` per task, one line per example,
with the keys lmms-eval's EvaluationTracker keeps after sanitising a generate_until sample:
`doc_id` (position in the task), `target` (the gold answer as text), `filtered_resps` (the raw
generation; `resps` is dropped when equal, as lmms-eval does), `input` (the prompt text the
model was asked, when the built split is found), `doc_hash` (SHA-256 of the doc's JSON: idx,
question, choices, answer), and the per-sample metric, here `livr_acc`, shaped like lmms-eval's
`blink_acc` entry: {"id", "gt_content", "pred_parsed", "pred", "sub_task", "is_correct"}. Task
names follow lmms-eval's where it has the task (`blink_jigsaw`, `blink_object_localization`,
..., `pixmo_count`); our own test splits are `livr_<task>`. lmms-eval prefixes files with a run
date; we leave it out so an export is byte-identical each time.

VLMEvalKit: one `<model>_<dataset>.xlsx` (and `.tsv`, the other format its `load` reads) per
task, the prediction-file columns of its image MCQ datasets: `index`, `question`, one column per
option letter (`A`, `B`, ...), `answer` (the gold letter, or the count), `category` (the BLINK
sub-task), `prediction` (the raw generation), plus `id` (our idx), and our parse as
`extracted` and `hit` (1/0: the `hit` column of VLMEvalKit's *_result files). Datasets are named
`BLINK_<sub task>` for BLINK-sourced tests, `PixMo_Count` and `LIVR_<task>` otherwise. Indices
are 0.. in the run's order: VLMEvalKit's own BLINK TSV numbers rows its own way, so its
evaluator needs our TSV merged by question, not by index.

xlsx files are written with fixed zip timestamps and document dates, so they too are
byte-identical for the same run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from builders.atomic import atomic_write_bytes, atomic_write_text
from builders.io import MANIFEST, iter_records, split_dir
from builders.record import Record
from builders.registry import LETTERS, RegistryError, TaskSpec, load_registry
from builders.schema import check_keys
from harness.errors import ConfigError
from harness.protocol import ZeroShotProtocol
from harness.store import CONFIG, METRICS, PREDICTIONS

FORMATS = ("lmms-eval", "vlmevalkit")
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
_FIXED_DOC_TIME = "1980-01-01T00:00:00Z"


class ExportError(ConfigError):
    """The folder is not a scored run, or its files cannot be read."""


def export_names(spec: TaskSpec) -> tuple[str, str]:
    """lmms-eval's task name and a VLMEvalKit dataset name for our test split of `spec`
    (lmms-eval's own where it has the task)."""
    if spec.test_source == "blink":
        return f"blink_{spec.blink_config.lower()}", f"BLINK_{spec.blink_config}"
    if spec.test_source == "pixmo":
        return "pixmo_count", "PixMo_Count"
    return f"livr_{spec.name}", f"LIVR_{spec.name}"


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ExportError(f"{path.parent} is not a scored run folder (no {path.name}); run the "
                          "cell first, or give the folder holding predictions.jsonl")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path} is not valid JSON ({exc.msg})") from None


def _config(folder: Path) -> dict[str, Any]:
    """config.json of the run (an eval/<split>/ folder: of the run two levels up)."""
    for candidate in (folder, folder.parent.parent):
        if (candidate / CONFIG).is_file():
            return _read_json(candidate / CONFIG)
    raise ExportError(f"no {CONFIG} at {folder} or {folder.parent.parent}: not a run folder")


def _records(built: Path | None, task: str, split: str) -> dict[str, Record]:
    if built is None or not (split_dir(built, task, split) / MANIFEST).is_file():
        return {}
    return {r.idx: r for r in iter_records(split_dir(built, task, split))}


def _doc_hash(row: dict[str, Any], record: Record | None) -> str:
    doc = {"idx": row["idx"], "answer": row["gold"],
           "question": record.question if record else None,
           "choices": list(record.choices) if record else list(row.get("choices") or [])}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _letter(parsed: str | None) -> str:
    return (parsed or "").strip("()")


def _lmms_lines(rows: Sequence[dict[str, Any]], spec: TaskSpec, records: dict[str, Record],
                protocol: ZeroShotProtocol) -> str:
    lines = []
    for i, row in enumerate(rows):
        record = records.get(row["idx"])
        sample: dict[str, Any] = {
            "doc_id": i,
            "target": row["gold"],
            "filtered_resps": row["raw"],
            "doc_hash": _doc_hash(row, record),
            "livr_acc": {
                "id": row["idx"], "gt_content": _letter(row["gold"]),
                "pred_parsed": _letter(row.get("parsed")), "pred": row["raw"],
                "sub_task": spec.sub_task, "is_correct": bool(row.get("correct")),
            },
        }
        if record is not None:
            sample["input"] = protocol.prompt(record.prompt, spec)
        lines.append(json.dumps(sample, ensure_ascii=False) + "\n")
    return "".join(lines)


def _table(rows: Sequence[dict[str, Any]], spec: TaskSpec, records: dict[str, Record]
           ) -> tuple[list[str], list[list[Any]]]:
    letters = LETTERS[: max([spec.num_options, *(len(r.get("letters") or "") for r in rows)])]
    head = ["index", "id", "question", *letters, "answer", "category", "prediction",
            "extracted", "hit"]
    table = []
    for i, row in enumerate(rows):
        record = records.get(row["idx"])
        choices = list(row.get("choices") or (record.choices if record else spec.choices))
        options = [choices[k] if k < len(choices) else "" for k in range(len(letters))]
        table.append([
            i, row["idx"], record.question if record else "", *options, _letter(row["gold"]),
            spec.sub_task, row["raw"], _letter(row.get("parsed")), int(bool(row.get("correct"))),
        ])
    return head, table


def _tsv(head: list[str], table: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(head)
    writer.writerows(table)
    return buffer.getvalue()


def _xlsx(head: list[str], table: list[list[Any]]) -> bytes:
    from openpyxl import Workbook  # only exports need it

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(head)
    for line in table:
        # openpyxl refuses control characters; a generation may hold them.
        sheet.append([re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", v) if isinstance(v, str)
                      else v for v in line])
    raw = io.BytesIO()
    workbook.save(raw)
    # openpyxl stamps the save time into the zip entries and docProps/core.xml: fix both.
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*",
                              rb"\g<1>" + _FIXED_DOC_TIME.encode(), data)
            dst.writestr(zipfile.ZipInfo(info.filename, _FIXED_ZIP_TIME), data,
                         zipfile.ZIP_DEFLATED)
    return out.getvalue()


def export_predictions(
    folder: Path, out: Path, formats: Iterable[str] = FORMATS, built: Path | None = None
) -> list[Path]:
    """Write the run in `folder` as lmms-eval / VLMEvalKit prediction files under `out`;
    returns the files written. `built` (default: the built data the run recorded) supplies
    questions and prompts; without it those columns stay empty."""
    folder, out = Path(folder), Path(out)
    formats = tuple(formats)
    check_keys(formats, FORMATS, "", ExportError, what="format")
    metrics = _read_json(folder / METRICS)
    config = _config(folder)
    if not (folder / PREDICTIONS).is_file():
        raise ExportError(f"{folder} has no {PREDICTIONS}: nothing to export")
    rows = [json.loads(line) for line in
            (folder / PREDICTIONS).read_text(encoding="utf-8").splitlines() if line.strip()]
    built = built or (Path(metrics["executor_info"]["built"])
                      if metrics.get("executor_info", {}).get("built") else None)
    split = metrics.get("split", "test")
    protocol = ZeroShotProtocol.from_mapping(config.get("zero_shot") or {}) \
        if config.get("method", {}).get("finetune") == "none" else ZeroShotProtocol()
    model = f"{config['backbone']}_{config['method_name']}"
    registry = load_registry()
    written = []
    for task in dict.fromkeys(r["task"] for r in rows):
        try:
            spec = registry.resolve(task)
        except RegistryError:
            raise ExportError(f"{folder / PREDICTIONS}: unknown task {task!r}") from None
        task_rows = [r for r in rows if r["task"] == task]
        records = _records(built, task, split)
        lmms_task, dataset = export_names(spec)
        if "lmms-eval" in formats:
            path = out / "lmms-eval" / model / f"samples_{lmms_task}.jsonl"
            written.append(_write(path, _lmms_lines(task_rows, spec, records, protocol)))
        if "vlmevalkit" in formats:
            head, table = _table(task_rows, spec, records)
            stem = f"{model}_{dataset}"  # the model name may hold dots
            where = out / "vlmevalkit" / model
            written.append(_write(where / f"{stem}.tsv", _tsv(head, table)))
            written.append(_write(where / f"{stem}.xlsx", _xlsx(head, table)))
    return written


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        return atomic_write_bytes(path, content)
    return atomic_write_text(path, content)
