"""The lmms-eval and VLMEvalKit packs over real built splits (miniature sources, real builders):
prompts verbatim, images unchanged, answers scored by the toolkit's own scorer."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from datasets import load_dataset
from PIL import Image

from builders.cli import main as build_task
from builders.io import read_split, split_dir
from builders.miniature import write_all
from harness.cli import main as harness
from harness.items import Item
from harness.metrics import score

TASKS = ("counting", "jigsaw", "visual_correspondence", "relative_reflectance")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("packs")
    sources = root / "sources"
    write_all(sources)
    for task in TASKS:
        assert build_task([task, "--split", "test", "--source-root", str(sources), "--out",
                           str(root / "built"), "--n", "3", "--no-progress"]) == 0
    return root / "built"


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Tags(yaml.SafeLoader):
    """lmms-eval's YAML with its `!function module.name` tags kept as strings."""


_Tags.add_constructor("!function", lambda loader, node: "!function " + node.value)


def _fake_export(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "livr.json").write_text(json.dumps({"latent_sequence": "<|latent_0|><|latent_1|>"}))
    return folder


def test_lmms_eval_pack_reads_prompts_images_and_scores_like_the_toolkit(
        built, tmp_path, monkeypatch, capsys):
    out = tmp_path / "lmms"
    assert harness(["export-lmms-eval", "--built", str(built), "--out", str(out)]) == 0
    assert "4 task(s)" in capsys.readouterr().out
    template = yaml.load((out / "_livr_template_yaml").read_text(), Loader=_Tags)
    assert template["doc_to_text"] == "!function utils.livr_doc_to_text"
    assert template["generation_kwargs"]["do_sample"] is False
    group = yaml.safe_load((out / "livr.yaml").read_text())
    assert group["task"] == [f"livr_{t}" for t in TASKS]
    utils = _module(out / "utils.py", "livr_pack_utils")
    kwargs = template["lmms_eval_specific_kwargs"]["default"]
    for task in TASKS:
        config = yaml.load((out / f"livr_{task}.yaml").read_text(), Loader=_Tags)
        assert config["include"] == "_livr_template_yaml" and config["test_split"] == "test"
        # What lmms-eval does with the YAML: load_dataset(dataset_path, **dataset_kwargs).
        docs = load_dataset(template["dataset_path"], **config["dataset_kwargs"])["test"]
        records = read_split(split_dir(built, task, "test"))
        assert [d["idx"] for d in docs] == [r.idx for r in records]
        results = []
        for doc, record in zip(docs, records):
            assert utils.livr_doc_to_text(doc, kwargs) == record.prompt
            images = utils.livr_doc_to_visual(doc)
            expected = [Image.open(io.BytesIO(b)).convert("RGB") for b in record.images]
            assert [i.tobytes() for i in images] == [e.tobytes() for e in expected]
            for answer in (record.answer, "I cannot tell"):
                result = utils.livr_process_results(doc, [answer])["livr_acc"]
                ours = score(Item.from_record(record, _spec(task)), answer)
                assert (result["correct"], result["parsed"]) == (ours.correct, ours.parsed)
                results.append(result)
        assert utils.livr_aggregate(results) == 50.0  # every gold right, every refusal wrong
    monkeypatch.setenv("LIVR_EXPORT", str(_fake_export(tmp_path)))
    doc = load_dataset("parquet", **yaml.load((out / "livr_jigsaw.yaml").read_text(),
                                              Loader=_Tags)["dataset_kwargs"])["test"][0]
    assert utils.livr_doc_to_text(doc, kwargs) == doc["prompt"] + "<|latent_0|><|latent_1|>"


def _spec(task: str):
    from builders.registry import load_registry

    return load_registry().resolve(task)


def test_lmms_eval_pack_bakes_an_export_suffix_and_refuses_to_overwrite(built, tmp_path, capsys):
    out = tmp_path / "lmms"
    export = _fake_export(tmp_path)
    assert harness(["export-lmms-eval", "--built", str(built), "--out", str(out), "--tasks",
                    "jigsaw", "--export", str(export)]) == 0
    template = yaml.load((out / "_livr_template_yaml").read_text(), Loader=_Tags)
    assert template["lmms_eval_specific_kwargs"]["default"]["latent_sequence"] == \
        "<|latent_0|><|latent_1|>"
    before = (out / "livr_jigsaw.yaml").read_bytes()
    capsys.readouterr()
    assert harness(["export-lmms-eval", "--built", str(built), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "livr_jigsaw.yaml").read_bytes() == before


def test_vlmevalkit_tsv_keeps_bytes_prompts_and_scores(built, tmp_path, monkeypatch):
    out = tmp_path / "vlm"
    assert harness(["export-vlmevalkit", "--built", str(built), "--out", str(out)]) == 0
    listing = json.loads((out / "livr_vlmevalkit.json").read_text())
    assert sorted(listing) == ["LIVR_Counting", "LIVR_Jigsaw", "LIVR_Relative_Reflectance",
                               "LIVR_Visual_Correspondence"]
    monkeypatch.setenv("LMUData", str(tmp_path / "lmudata"))
    pack = _module(out / "livr_vlmeval.py", "livr_vlmeval_pack")
    for name, task in zip(sorted(listing), ("counting", "jigsaw", "relative_reflectance",
                                            "visual_correspondence")):
        frame = pd.read_csv(listing[name], sep="\t", keep_default_na=False,
                            dtype={"answer": str})
        records = read_split(split_dir(built, task, "test"))
        assert frame["index"].tolist() == list(range(len(records)))  # integers, as VLMEvalKit
        dataset = pack.LivrMCQDataset(name)
        predictions = []
        for i, record in enumerate(records):
            row = frame.iloc[i]
            encoded = pack.images_of(row)
            assert [base64.b64decode(e) for e in encoded] == list(record.images)  # same bytes
            if record.choices:
                assert row["answer"] == record.answer.strip("()")  # a bare letter
                assert [row[c] for c in "ABCD"[:len(record.choices)]] == list(record.choices)
            else:
                assert row["answer"] == record.answer
            msgs = dataset.build_prompt(i)
            assert msgs[-1] == {"type": "text", "value": record.prompt}
            assert [Path(m["value"]).read_bytes() for m in msgs[:-1]] == list(record.images)
            predictions.append(record.answer if i % 2 == 0 else "no idea")
        frame["prediction"] = predictions
        frame.to_csv(tmp_path / "pred.tsv", sep="\t", index=False)
        accuracy = dataset.evaluate(str(tmp_path / "pred.tsv"))
        expected = 100.0 * sum(i % 2 == 0 for i in range(len(records))) / len(records)
        assert accuracy.set_index("category")["accuracy"]["Overall"] == pytest.approx(expected)


def test_vlmevalkit_rows_read_the_same_after_its_base_class_turns_them_into_lists():
    """VLMEvalKit's ImageBaseDataset replaces a multi-image TSV cell by a Python list when it
    loads the file; the class reads either form."""
    from harness.packs.vlmevalkit_dataset import images_of

    encoded = [base64.b64encode(b).decode() for b in (b"\x89PNG1", b"\x89PNG2")]
    assert images_of({"image": json.dumps(encoded)}) == encoded  # as the TSV holds it
    assert images_of({"image": list(encoded)}) == encoded  # after VLMEvalKit's loader
    assert images_of({"image": encoded[0]}) == encoded[:1]
