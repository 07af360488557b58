"""Table configs: the shipped tables hold the paper's grids; overrides apply; every unknown name
(table, backbone, task, method, config key, method field) fails naming the valid choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_table, table_names
from harness.errors import ConfigError

NINE = [
    "counting", "jigsaw", "localization", "visual_correspondence", "art_style",
    "semantic_correspondence", "functional_correspondence", "relative_reflectance",
    "visual_similarity",
]


def test_shipped_tables():
    assert table_names() == ["broad", "mirage", "spatial", "table1", "table2", "table3", "table4"]
    t1 = load_table("1")
    assert t1.backbones == ("qwen2.5-vl-3b", "qwen3-vl-4b", "llava-onevision-1.5-4b")
    assert list(t1.tasks) == NINE and list(t1.methods) == ["zero_shot", "direct_sft", "livr"]
    assert t1.training == "single" and t1.methods["livr"].checkpoint == "best"
    assert t1.delta is not None and t1.delta.label == "Delta vs SFT"

    t2 = load_table("table2")
    assert t2.training == "mixture" and t2.cell_tasks() == ("mixture6",)
    assert t2.backbones == ("qwen3-vl-4b",) and len(t2.tasks) == 6 and t2.train_per_task == 1000
    assert t2.methods["direct_sft"].epochs == (0, 5) and t2.methods["livr"].epochs == (2, 3)
    assert {m.checkpoint for m in t2.methods.values() if m.trained} == {"final"}

    t3 = load_table("3")
    assert list(t3.methods) == ["zero_shot", "direct_sft", "livr", "latents_only", "mask_only",
                                "image_twice", "prompt_tuning"]
    assert t3.sections[0].rows[0].label == "Baseline"

    t4 = load_table("4")
    assert [s.title[:3] for s in t4.sections] == ["(a)", "(b)", "(c)", "(d)"]
    assert len(t4.methods) == 12  # the default LIVR is one cell shown in every section
    assert [r.method for r in t4.sections[1].rows] == [
        "latents_only", "livr_s2_8", "livr", "livr_s6_4", "livr_s8_2"]

    mirage = load_table("mirage").methods["livr_mirage"]
    assert (mirage.finetune, mirage.latents, mirage.epochs, mirage.lr) == (
        "full", 4, (10, 10), 1e-5)


def test_overrides():
    t = load_table("1", {"backbones": ["tiny-qwen3-vl"], "tasks": ["spair", "counting"],
                         "methods": ["livr", "latents_only"], "epochs": 5, "limit": 3})
    assert t.backbones == ("tiny-qwen3-vl",)
    assert t.tasks == ("semantic_correspondence", "counting")  # aliases resolve
    assert list(t.methods) == ["livr", "latents_only"]  # a method outside the table is added
    assert t.methods["livr"].epochs == (2, 3) and t.methods["latents_only"].epochs == (0, 5)
    assert t.limit == 3
    assert t.delta is None  # direct_sft is not in the filtered table


def test_lr_override_changes_every_trained_method_only():
    base = load_table("mirage")
    t = load_table("mirage", {"lr": 3e-3})
    for name, method in t.methods.items():
        assert method.lr == (3e-3 if method.trained else base.methods[name].lr), name
    assert {m.lr for m in base.methods.values() if m.trained} != {3e-3}  # it really changed
    one = load_table("1", {"lr": 2e-4})
    assert one.methods["zero_shot"].lr == load_table("1").methods["zero_shot"].lr
    assert one.methods["livr"].lr == one.methods["direct_sft"].lr == 2e-4


def test_overrides_filter_sections():
    t = load_table("4", {"methods": ["livr", "livr_k4"]})
    assert [(s.title[:3], [r.method for r in s.rows]) for s in t.sections] == [
        ("(a)", ["livr"]), ("(b)", ["livr"]), ("(c)", ["livr_k4", "livr"]), ("(d)", ["livr"])]


@pytest.mark.parametrize(("table", "overrides", "message"), [
    ("9", {}, "unknown table '9'; valid: broad, mirage, spatial, table1, table2, table3, table4"),
    ("1", {"backbones": ["qwen4"]}, "unknown backbone 'qwen4'; valid: qwen2.5-vl-3b, qwen2.5-vl-7b, qwen3-vl-4b"),
    ("1", {"tasks": ["jigsw"]}, r"unknown task 'jigsw'; valid .*jigsaw.*correspondence \(spair\)"),
    ("1", {"methods": ["lvr"]}, "unknown method 'lvr'; valid methods: zero_shot, direct_sft"),
    ("1", {"backbone": ["x"]}, "unknown override.*backbone; valid overrides: backbones, tasks, methods"),
    ("1", {"epochs": 0}, "--epochs must be >= 1"),
    ("1", {"epochs": 1}, "too few for 'livr'"),
    ("1", {"limit": 0}, "--limit must be >= 1"),
    ("1", {"lr": 0.0}, "--lr must be > 0, got 0.0"),
])
def test_errors_name_valid_choices(table, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_table(table, overrides)


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "custom.toml"
    path.write_text(text)
    return path


GRID = 'backbones = ["qwen3-vl-4b"]\ntasks = ["jigsaw"]\n'
LIVR = GRID + 'methods = ["livr"]\n'


@pytest.mark.parametrize(("text", "message"), [
    (LIVR + "epoch = 3\n", "unknown key.*epoch; valid keys: title, training, mixture, checkpoint"),
    (LIVR + "[method_overrides.livr]\nlatent = 8\n",
     "method 'livr': unknown field\\(s\\) latent; valid fields: .*latents"),
    (LIVR + "[method_overrides.lvr]\nlatents = 8\n", "unknown method 'lvr'"),
    (LIVR + 'checkpoint = "last"\n', "unknown checkpoint 'last'; valid: best, final"),
    (LIVR + 'training = "mixture"\n', "`mixture`"),
    (GRID + '[[sections]]\nrows = [["livr", "L"]]\ncolour = "red"\n',
     "unknown key.*colour; valid keys: title, rows"),
    (GRID, "`methods` \\(or `sections`\\)"),
])
def test_config_file_errors(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_table(_toml(tmp_path, text))


def test_custom_table_with_overrides(tmp_path):
    path = _toml(tmp_path, LIVR + "[method_overrides.livr]\nlatents = 8\nepochs = [1, 2]\n")
    t = load_table(path)
    livr = t.methods["livr"]
    assert t.name == "custom" and livr.latents == 8 and livr.epochs == (1, 2)
