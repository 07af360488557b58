"""The generalisation benchmarks' test splits (BLINK-3 / BLINK-5, RoboSpatial, MMVP, V*) and the
Visual-CoT training set, each built from its miniature and checked against the miniature's files
read independently (pyarrow, csv, json): rows pass through, prompts are the compared works'
exact texts, faults are counted by reason, both layouts of a release give the same records."""

from __future__ import annotations

import csv
import json
import shutil

import pyarrow.parquet as pq
import pytest

from builders.build import BuildRequest, run_build
from builders.io import read_manifest, split_dir
from builders.miniature import blink, blink_configs, mmvp, robospatial, visualcot, vstar
from builders.registry import LETTERS, load_registry
from builders.sources.blink import CONFIGS, find_root, iter_rows, split_files
from builders.sources.mmvp import iter_rows as mmvp_rows

from .conftest import build_split


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmarks")
    blink.write(root)
    blink_configs.write(root)
    for module in (mmvp, vstar, visualcot):
        module.write(root)
    robospatial.write(root)
    robospatial.write_export(root)
    visualcot.write_lvr(root)
    return root


def _rejected(out, task, split="test"):
    return read_manifest(split_dir(out, task, split))["rejected"]


def test_all_14_blink_configs_are_readable(root):
    top = find_root(root)
    for config in CONFIGS:
        rows = [r for f in split_files(top, config, "val") for r in iter_rows(f)]
        assert len(rows) == blink.VAL_ROWS and rows[0]["idx"] == f"val_{config}_1", config
        assert all(r["answer"] in [f"({x})" for x in LETTERS[: len(r["choices"])]] for r in rows)


@pytest.mark.parametrize("task", ["blink3", "blink5"])
def test_blink_subsets_pass_rows_through_config_by_config(root, tmp_path, task):
    spec = load_registry().resolve(task)
    configs = spec.params["configs"]
    records = build_split(task, "test", root, tmp_path, blink.VAL_ROWS * len(configs))
    truth = [r for c in configs
             for r in pq.read_table(root / "BLINK" / c / "val-00000-of-00001.parquet").to_pylist()]
    assert [r.idx for r in records] == [t["idx"] for t in truth]
    for rec, row in zip(records, truth):
        assert (rec.question, rec.sub_task, rec.choices, rec.answer) == (
            row["question"], row["sub_task"], row["choices"], row["answer"])
        assert rec.images == [row[c]["bytes"] for c in ("image_1", "image_2", "image_3", "image_4")
                              if row[c] is not None]
        if spec.params["prompt_style"] == "blink":
            assert rec.prompt == row["prompt"]
        else:  # LVR's evaluation.py: question, "Options:", "A. c" lines, each ending "\n"
            options = "".join(f"{LETTERS[i]}. {c}\n" for i, c in enumerate(row["choices"]))
            assert rec.prompt == f"{row['question']}\nOptions:\n{options}"


def test_blink_subset_config_errors_name_the_fix(root, tmp_path):
    toml = (load_registry().path.read_text()
            .replace('"Relative_Depth", "Multi-view_Reasoning"', '"Relative_Depth", "Multiview"'))
    path = tmp_path / "tasks.toml"
    path.write_text(toml)
    from builders.registry import load_registry as load

    with pytest.raises(ValueError, match="unknown BLINK config.*Multiview.*Multi-view_Reasoning"):
        run_build(BuildRequest("blink3", "test", root, tmp_path / "out", n=1, progress=False),
                  load(path))


@pytest.mark.parametrize("layout", ["hf", "export"])
def test_robospatial_yes_no_and_points(root, tmp_path, layout):
    folder = root / (robospatial.TOP if layout == "hf" else robospatial.EXPORT)
    yes_no = build_split("robospatial", "test", folder, tmp_path, 12)
    truth = [r for c in ("configuration", "compatibility")
             for r in pq.read_table(root / robospatial.TOP / "data" /
                                    f"{c}-00000-of-00001.parquet").to_pylist()]
    kept = [t for t in truth if t["answer"].strip().lower() in ("yes", "no")]
    assert [r.answer for r in yes_no] == [t["answer"].strip().lower() for t in kept]
    assert [r.prompt for r in yes_no] == [t["question"] for t in kept]
    assert [r.images[0] for r in yes_no] == [t["img"]["bytes"] for t in kept]
    assert [r.sub_task for r in yes_no] == [t["category"] for t in kept]
    assert all(r.choices == ["yes", "no"] for r in yes_no)
    assert _rejected(tmp_path, "robospatial") == {"not_yes_no": 1}
    points = build_split("robospatial_context", "test", folder, tmp_path, 6)
    assert [json.loads(r.source)["category"] for r in points] == ["context"] * 6
    assert [r.answer for r in points] == [str(robospatial.polygon(i)) for i in range(7) if i != 3]
    assert _rejected(tmp_path, "robospatial_context") == {"bad_polygon": 1}


def test_mmvp_rows_pairs_and_lvr_prompt(root, tmp_path):
    records = build_split("mmvp", "test", root / mmvp.TOP, tmp_path, 10)
    with (root / mmvp.TOP / "Questions.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["Index"] != str(mmvp.BAD_OPTIONS_ROW)]
    assert [json.loads(r.source)["index"] for r in records] == [int(r["Index"]) for r in rows[:10]]
    for rec, row in zip(records, rows):
        a, b = row["Options"][4:].split(" (b) ")
        assert rec.choices == [a, b] and rec.answer == row["Correct Answer"].upper()
        assert rec.prompt == f"{row['Question']}\nOptions:\nA. {a} B. {b}"
        assert json.loads(rec.source)["pair"] == (int(row["Index"]) - 1) // 2
    assert _rejected(tmp_path, "mmvp") == {"bad_options": 1}


def test_mmvp_label_corrections_are_an_option(tmp_path):
    with (tmp_path / "Questions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Index", "Question", "Options", "Correct Answer"])
        for index in (98, 99, 100, 279):
            w.writerow([index, "Are the tusks long?", "(a) Long tusks (b) Short tusks", "(a)"])
    golds = {labels: ["AB"[r.correct] for r in mmvp_rows(tmp_path, labels)]
             for labels in ("original", "corrected")}
    # lmms-eval's fixes: Index 99 -> (b), 100 -> (a), 279 -> (b)
    assert golds == {"original": list("AAAA"), "corrected": list("ABAB")}
    with pytest.raises(ValueError, match="original, corrected"):
        list(mmvp_rows(tmp_path, "fixed"))


def test_vstar_categories_labels_and_text(root, tmp_path):
    records = build_split("vstar", "test", root / vstar.TOP, tmp_path, 9)
    lines = [json.loads(x) for x in (root / vstar.TOP / "test_questions.jsonl").read_text()
             .splitlines()]
    kept = [x for x in lines if x["category"] != "OCR" and x["label"] != "E"
            and (root / vstar.TOP / x["image"]).is_file()]
    assert [r.prompt for r in records] == [x["text"] for x in kept]
    assert [r.answer for r in records] == [f"({x['label']})" for x in kept]
    assert [r.sub_task for r in records] == [x["category"] for x in kept]
    assert [len(r.choices) for r in records] == [4] * 5 + [2] * 4
    assert records[0].question == kept[0]["text"].split("\n")[0]
    assert _rejected(tmp_path, "vstar") == {"answer_not_in_options": 1, "missing_image": 1}


def test_visualcot_both_files_give_the_same_direct_pairs(root, tmp_path):
    own = build_split("visualcot", "train", root / visualcot.TOP, tmp_path / "own", 12)
    lvr = build_split("visualcot", "train", root / visualcot.LVR_TOP, tmp_path / "lvr", 12)
    want = [visualcot.qa(i) for i in range(visualcot.ENTRIES)
            if i not in (visualcot.MISSING_IMAGE_ENTRY, visualcot.NO_ANSWER_ENTRY)]
    for records in (own, lvr):
        assert [(r.sub_task, r.question, r.answer) for r in records] == want
        assert all(r.prompt == f"{r.question}\nProvide a short and direct response."
                   for r in records)
        assert all("[" not in r.prompt + r.answer and len(r.images) == 1 for r in records)
    assert [r.images for r in own] == [r.images for r in lvr]
    assert _rejected(tmp_path / "own", "visualcot", "train") == {
        "missing_image": 1, "no_question_or_answer": 1}


def test_readers_find_a_hugging_face_hub_cache(root, tmp_path):
    """`snapshot_download` without local_dir: the revision refs/main names is read."""
    repo = tmp_path / "hub" / "datasets--chanhee-luke--RoboSpatial-Home"
    shutil.copytree(root / robospatial.TOP, repo / "snapshots" / "abc123")
    (repo / "snapshots" / "old").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123\n")
    records = build_split("robospatial", "test", tmp_path, tmp_path / "out", 12)
    assert len(records) == 12
    assert all(len(r.images) == 1 for r in records)
