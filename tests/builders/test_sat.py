"""SAT: SAT-32k (train / val) and SAT Val (test) from array/SAT, array/SAT-v2 and ViGoRL's copy,
checked against the miniature files read independently (pyarrow, json): options and gold survive
the shuffle, train and val are a disjoint seeded sample with the 1/33 val share, ViGoRL's files are
used as they are, SAT's first-frame bug is matched, bad rows are counted by reason."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from builders.io import read_manifest, split_dir
from builders.miniature import sat as mini
from builders.registry import LETTERS
from builders.sources import SourceLayoutError
from builders.sources.sat import match_choice, parse_vigorl_prompt, question_type

from .conftest import build_split


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sat")
    return {"sat": mini.write(root), "v2": mini.write_v2(root), "vigorl": root / mini.VIGORL}


def _truth(top, split):
    return pq.read_table(top / f"SAT_{split}.parquet").to_pylist()


def _gold_text(record):
    return record.choices[LETTERS.index(record.answer.strip("()"))]


def test_test_split_is_sat_val_with_gold_kept_through_the_shuffle(sources, tmp_path):
    truth = _truth(sources["sat"], "val")
    records = build_split("sat", "test", sources["sat"], tmp_path, mini.VAL_ROWS - 1)
    kept = [r for i, r in enumerate(truth) if i != mini.NOT_AN_OPTION_ROW]
    assert len(records) == len(kept)
    for rec, row in zip(records, kept):
        src = json.loads(rec.source)
        assert rec.question == row["question"] and rec.sub_task == row["question_type"]
        assert sorted(rec.choices) == sorted(row["answers"])
        assert [row["answers"][i] for i in src["option_order"]] == rec.choices
        assert rec.images == list(row["image_bytes"])
        assert src["gold_text"] == row["correct_answer"]
        # the gold is the released correct answer (or it once " in the first frame" is removed)
        assert _gold_text(rec) == row["correct_answer"].replace(" in the first frame", "")
        assert rec.prompt == (f"{row['question']}\nSelect from the following choices.\n"
                              + "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(rec.choices)))
    m = read_manifest(split_dir(tmp_path, "sat", "test"))
    assert m["rejected"] == {"answer_not_in_options": 1}
    # the shuffle moves the gold off (A) for some questions
    assert {r.answer for r in records} != {"(A)"}


def test_train_and_val_are_a_disjoint_seeded_sample(sources, tmp_path):
    val = build_split("sat", "val", sources["sat"], tmp_path, 5)
    train = build_split("sat", "train", sources["sat"], tmp_path, mini.TRAIN_ROWS - 6)
    rows = {json.loads(r.source)["row"] for r in val} | {json.loads(r.source)["row"] for r in train}
    assert len(rows) == len(val) + len(train) == mini.TRAIN_ROWS - 1  # all but the imageless row
    # val's share: round(150 * 1000 / 33000) = 5 rows; train the rest, in file order
    numbers = [int(json.loads(r.source)["row"].split("#")[1]) for r in train]
    assert numbers == sorted(numbers)
    assert read_manifest(split_dir(tmp_path, "sat", "train"))["rejected"] == {"no_image_bytes": 1}
    again = build_split("sat", "val", sources["sat"], tmp_path / "again", 5)
    assert [r.source for r in again] == [r.source for r in val]
    other = build_split("sat", "val", sources["sat"], tmp_path / "seed7", 5, seed=7)
    assert [r.source for r in other] != [r.source for r in val]


def test_sat_v2_layout_gives_the_same_records(sources, tmp_path):
    for split, n in (("test", 11), ("val", 5)):
        a = build_split("sat", split, sources["sat"], tmp_path / "a", n)
        b = build_split("sat", split, sources["v2"], tmp_path / "b", n)
        strip = [(r.images, r.choices, r.answer, r.prompt) for r in a]
        assert strip == [(r.images, r.choices, r.answer, r.prompt) for r in b]


def test_vigorl_files_are_used_as_released(sources, tmp_path):
    base = sources["vigorl"] / "spatial_reasoning"
    lines = [json.loads(x) for x in (base / "sat2_test/sat2_test.jsonl").read_text().splitlines()]
    records = build_split("sat", "test", sources["vigorl"], tmp_path, mini.TEST_ROWS - 1)
    kept = [x for i, x in enumerate(lines) if i != mini.VIGORL_UNPARSED_LINE]
    for rec, line in zip(records, kept):
        human, gold = (t["value"] for t in line["conversations"])
        options = [x[3:] for x in human.split("Answer Choices:\n")[1].splitlines()[:-1]]
        assert rec.choices == options  # ViGoRL's order kept
        assert _gold_text(rec) == gold.replace(" in the first frame", "")
        assert json.loads(rec.source)["gold_text"] == gold
        assert rec.images == [(sources["vigorl"] / line["image"]).read_bytes()]  # merged frames
    m = read_manifest(split_dir(tmp_path, "sat", "test"))
    assert m["rejected"] == {"unparsed_prompt": 1}
    train = build_split("sat", "train", sources["vigorl"], tmp_path, mini.RL_ROWS["train"])
    rl = [json.loads(x) for x in (base / "vigorl_sat2_train_RL.jsonl").read_text().splitlines()]
    assert [_gold_text(r) for r in train] == [x["answer"] for x in rl]
    assert [len(r.images) for r in train] == [len(x["images"]) for x in rl]


def test_prompt_parser_and_question_types():
    parsed = parse_vigorl_prompt("<image>\nQuestion: Is it left?\nAnswer Choices:\nA. left\n"
                                 "B. right\nAnswer with the text of the option.")
    assert parsed == ("Is it left?", ("left", "right"))
    assert parse_vigorl_prompt("Question: q\nAnswer Choices:\nB. x\nA. y") is None  # letters order
    assert match_choice("Chair moved in the first frame", ("chair moved", "no")) == 0
    assert match_choice("maybe", ("yes", "no")) is None
    assert question_type("If I move to the sofa, what is left?") == "perspective"
    assert question_type("How did the camera likely move?") == "action_sequence"


def test_a_folder_without_sat_names_the_layout(tmp_path):
    with pytest.raises(SourceLayoutError, match="SAT_train.parquet"):
        build_split("sat", "test", tmp_path, tmp_path / "out", 1)


def test_same_seed_gives_byte_identical_splits(sources, tmp_path):
    for out in ("a", "b"):
        build_split("sat", "train", sources["sat"], tmp_path / out, 20)
    first, second = split_dir(tmp_path / "a", "sat", "train"), split_dir(tmp_path / "b", "sat", "train")
    names = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(second)) for p in second.rglob("*") if p.is_file())
    assert len(names) >= 3  # shards, manifest, dataset_info
    assert all((first / n).read_bytes() == (second / n).read_bytes() for n in names)


def test_a_parquet_file_without_sat_columns_is_named(sources, tmp_path):
    top = tmp_path / "SAT"
    top.mkdir()
    table = pq.read_table(sources["sat"] / "SAT_val.parquet").drop(["correct_answer"])
    pq.write_table(table, top / "SAT_val.parquet")
    with pytest.raises(ValueError, match=r"SAT_val.parquet: no column correct_answer"):
        build_split("sat", "test", top, tmp_path / "out", 1)
