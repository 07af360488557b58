"""Every bad input to the builders gets a clear error or a counted skip, never a traceback: a broken
tasks.toml (file, line, key), a COCO instances file missing a top-level list, duplicate csv rows,
BLINK rows that cannot pass through, an `--out` that is a file or read-only, `build-task all`
building nothing, hints that never suggest an invalid `--n`, and skipped images named in the log."""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from builders.cli import main
from builders.io import read_manifest, read_split, split_dir
from builders.registry import DEFAULT_REGISTRY, REGISTRY_ENV, get_task, load_registry
from builders.splitting import assign_split

ROOT = Path(__file__).parents[2]


def _build(*args: str) -> int:
    return main([*args, "--no-progress"])


# ---- tasks.toml ---------------------------------------------------------------------------------

def _registry(tmp_path: Path, monkeypatch, old: str, new: str) -> Path:
    text = DEFAULT_REGISTRY.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "tasks.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    monkeypatch.setenv(REGISTRY_ENV, str(path))
    return path


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old,new,needle,key", [
    ('num_options = 2\ntest_source = "blink"\n# Paper A.2',
     'num_options = "two"\ntest_source = "blink"\n# Paper A.2', 'num_options = "two"',
     "[tasks.jigsaw] num_options"),
    ("shard_rows = 500", "shard_row = 500", "shard_row = 500", "[defaults] shard_row"),
    ("sizes = { train = 1000, val = 250, test = 150 }\n[tasks.jigsaw.params]",
     "sizes = { train = 1000, val = -5, test = 150 }\n[tasks.jigsaw.params]", "val = -5",
     "[tasks.jigsaw] sizes val must be a positive integer"),
    ("jpeg_quality = 95", "jpeg_quality = 95 95", "jpeg_quality = 95 95", "not valid TOML"),
    # builder parameters, checked against the builder's Params when the file is loaded
    ("canvas_width = 400", "canvas_widht = 400", "canvas_widht = 400",
     "[tasks.jigsaw.params] canvas_widht: unknown key; valid keys: "),
    ("jitter_max_tries = 500", "jitter_max_tries = 5.5", "jitter_max_tries = 5.5",
     "[tasks.localization.params] jitter_max_tries must be int, got 5.5"),
    ('layout = "large"', "layout = 3", "layout = 3",
     "[tasks.semantic_correspondence.params] layout must be str, got 3"),
    ('prompt_style = "lvr"', 'prompt_style = "lvm"', 'prompt_style = "lvm"',
     "[tasks.blink5.params] prompt_style must be Literal['blink', 'lvr'], got 'lvm'"),
    ('label = "Loc"', 'lable = "Loc"', 'lable = "Loc"', "[tasks.localization] lable: unknown key"),
])
def test_broken_registry_names_file_line_and_key(tmp_path, monkeypatch, capsys, old, new,
                                                 needle, key):
    path = _registry(tmp_path, monkeypatch, old, new)
    assert _build("jigsaw", "--split", "train", "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert str(path) in err and key in err and f"line {_line(path, needle)}" in err, err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_a_missing_required_key_is_named_with_its_table(tmp_path, monkeypatch, capsys):
    path = _registry(tmp_path, monkeypatch, 'sub_task = "Jigsaw"\n', "")
    assert _build("jigsaw", "--split", "train") == 2
    err = capsys.readouterr().err
    assert f"{path}, line {_line(path, '[tasks.jigsaw]')}: [tasks.jigsaw] lacks sub_task" in err


def test_a_builder_parameter_missing_from_the_registry_is_named(mini_sources, tmp_path,
                                                                 monkeypatch, capsys):
    # Jigsaw's split_fractions line (the first one after its params header) removed.
    text = DEFAULT_REGISTRY.read_text(encoding="utf-8")
    _, params = text.split("[tasks.jigsaw.params]", 1)
    line = "split_fractions = { train = 0.8, val = 0.2 }\n"
    assert line in params.split("[tasks.localization]", 1)[0]
    path = _registry(tmp_path, monkeypatch, "[tasks.jigsaw.params]" + params,
                     "[tasks.jigsaw.params]" + params.replace(line, "", 1))
    rc = _build("jigsaw", "--split", "train", "--source-root", str(mini_sources["coco"]),
                "--out", str(tmp_path / "out"), "--n", "2")
    assert rc == 2  # refused when the file is loaded, before anything is read or built
    err = capsys.readouterr().err
    line = _line(path, "[tasks.jigsaw.params]")
    assert f"{path}, line {line}: [tasks.jigsaw.params] lacks split_fractions; add it" in err
    assert not (tmp_path / "out").exists()


# ---- COCO ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["annotations", "images", "categories"])
def test_coco_file_missing_a_top_level_list_is_an_error_naming_it(mini_sources, tmp_path, capsys,
                                                                   key):
    """Before: pycocotools indexed a file without `annotations` as images with no objects."""
    coco = tmp_path / "coco"
    shutil.copytree(mini_sources["coco"], coco)
    ann = coco / "annotations" / "instances_train2017.json"
    doc = json.loads(ann.read_text())
    del doc[key]
    ann.write_text(json.dumps(doc))
    rc = _build("localization", "--split", "train", "--source-root", str(coco), "--out",
                str(tmp_path / "out"), "--n", "2")
    assert rc == 1
    err = capsys.readouterr().err
    assert str(ann) in err and f"has no top-level '{key}' list" in err
    assert "annotations_trainval2017.zip" in err
    assert not split_dir(tmp_path / "out", "localization", "train").exists()


# ---- csv sources --------------------------------------------------------------------------------

def _duplicate_rows(path: Path, k: int) -> None:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([*rows, *rows[1:k + 1]])


@pytest.mark.parametrize("source,csv_name,task,reason", [
    ("nights", "data.csv", "visual_similarity", "duplicate_row"),
    ("funkpoint", "labels.csv", "functional_correspondence", "label_row_duplicate"),
])
def test_duplicate_csv_rows_are_dropped_and_counted(mini_sources, tmp_path, source, csv_name,
                                                    task, reason):
    copy = tmp_path / source
    shutil.copytree(mini_sources[source], copy)
    _duplicate_rows(copy / csv_name, 3)
    assert _build(task, "--split", "train", "--source-root", str(copy), "--out",
                  str(tmp_path / "out"), "--n", "2") == 0
    path = split_dir(tmp_path / "out", task, "train")
    assert read_manifest(path)["rejected"][reason] == 3
    used = [tuple(r.source_dict["source_images"]) for r in read_split(path)]
    assert len(used) == len(set(used))


# ---- BLINK pass-through -------------------------------------------------------------------------

def _blink_copy(mini_sources, tmp_path: Path, edit) -> Path:
    blink = tmp_path / "BLINK"
    shutil.copytree(mini_sources["blink"], blink)
    shard = blink / "Jigsaw" / "val-00000-of-00001.parquet"
    table = pq.read_table(shard)
    rows = table.to_pylist()
    edit(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    return shard


def test_blink_row_with_an_undecodable_image_is_refused_with_the_row(mini_sources, tmp_path,
                                                                     capsys):
    def corrupt(rows):
        rows[2]["image_2"] = {"bytes": b"\xff\xd8\xff\xe0 not a jpeg", "path": None}

    shard = _blink_copy(mini_sources, tmp_path, corrupt)
    rc = _build("jigsaw", "--split", "test", "--source-root", str(tmp_path / "BLINK"), "--out",
                str(tmp_path / "out"))
    assert rc == 1
    err = capsys.readouterr().err
    assert f"{shard}, row 3 (idx 'val_Jigsaw_3'): image_2 does not decode" in err
    assert not split_dir(tmp_path / "out", "jigsaw", "test").exists()


def test_blink_rows_with_a_duplicate_idx_are_refused_with_both_rows(mini_sources, tmp_path,
                                                                    capsys):
    def duplicate(rows):
        rows[3]["idx"] = rows[1]["idx"]

    shard = _blink_copy(mini_sources, tmp_path, duplicate)
    rc = _build("jigsaw", "--split", "test", "--source-root", str(tmp_path / "BLINK"), "--out",
                str(tmp_path / "out"))
    assert rc == 1
    err = capsys.readouterr().err
    assert f"{shard}, row 4 (idx 'val_Jigsaw_2'): idx 'val_Jigsaw_2' was already used by " \
           f"{shard.name} row 2" in err


# ---- --out --------------------------------------------------------------------------------------

def test_out_that_is_a_file_is_an_error(mini_sources, tmp_path, capsys):
    out = tmp_path / "built"
    out.write_text("not a folder")
    rc = _build("jigsaw", "--split", "val", "--source-root", str(mini_sources["coco"]), "--out",
                str(out), "--n", "2")
    assert rc == 2
    err = capsys.readouterr().err
    assert f"{out} is a file, not a folder" in err and "--out" in err and "Traceback" not in err
    assert out.read_text() == "not a folder"


def _can_mount_read_only(probe: Path) -> bool:
    probe.mkdir()
    cmd = f"mount --bind {probe} {probe} && mount -o remount,bind,ro {probe} && touch {probe}/x"
    proc = subprocess.run(["unshare", "-m", "sh", "-c", cmd], capture_output=True, text=True,
                          check=False)
    return "Read-only file system" in proc.stderr


def test_read_only_out_is_an_error(mini_sources, tmp_path, monkeypatch, capsys):
    """A real read-only folder: mode 0555 for a normal user, a read-only bind mount for root
    (which ignores modes); where neither can be made, the write fails with EROFS as it would."""
    out = tmp_path / "ro"
    args = ["jigsaw", "--split", "val", "--source-root", str(mini_sources["coco"]), "--out",
            str(out), "--n", "2", "--no-progress"]
    if os.geteuid() != 0:
        out.mkdir()
        out.chmod(0o555)
        rc, err = main(args), capsys.readouterr().err
        out.chmod(0o755)
    elif shutil.which("unshare") and _can_mount_read_only(tmp_path / "probe"):
        out.mkdir()
        cmd = (f"mount --bind {out} {out} && mount -o remount,bind,ro {out} && "
               f"exec {sys.executable} -m builders.cli " + " ".join(args))
        proc = subprocess.run(["unshare", "-m", "sh", "-c", cmd], cwd=ROOT, capture_output=True,
                              text=True, check=False)
        rc, err = proc.returncode, proc.stderr
    else:
        real_mkdir = Path.mkdir

        def read_only(self, *a, **k):
            if str(self).startswith(str(out)):
                raise OSError(errno.EROFS, "Read-only file system", str(self))
            return real_mkdir(self, *a, **k)

        monkeypatch.setattr(Path, "mkdir", read_only)
        rc, err = main(args), capsys.readouterr().err
    assert rc == 2, err
    assert str(out) in err and "writable --out" in err and "Traceback" not in err
    assert not any(out.rglob("*"))


# ---- build-task all, --n hints, skipped images --------------------------------------------------

def test_all_that_built_nothing_fails(tmp_path, monkeypatch, capsys):
    """VSP's maps are generated (it needs no files), so `all` over an empty source root builds
    it; with VSP left out of the registry, nothing can be built and `all` fails."""
    text = DEFAULT_REGISTRY.read_text(encoding="utf-8")
    start = text.index("\n[tasks.vsp]")
    later = [i for i in range(start + 1, len(text)) if text.startswith("\n[", i)
             and not text.startswith("\n[tasks.vsp", i)]
    path = tmp_path / "tasks.toml"
    path.write_text(text[:start] + (text[later[0]:] if later else "\n"), encoding="utf-8")
    monkeypatch.setenv(REGISTRY_ENV, str(path))
    empty = tmp_path / "data"
    empty.mkdir()
    assert _build("all", "--split", "train", "--source-root", str(empty), "--out",
                  str(tmp_path / "out")) == 1
    captured = capsys.readouterr()
    assert "nothing was built" in captured.err and "skipped jigsaw" in captured.out
    assert "vsp" not in captured.out


def test_n_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exc:
        _build("jigsaw", "--split", "train", "--n", "0")
    assert exc.value.code == 2 and "must be positive" in capsys.readouterr().err


def _break_images(mini_sources, tmp_path: Path, broken: int | None) -> tuple[Path, list[Path]]:
    """A copy of COCO with the first `broken` (None: all) images owned by jigsaw/train truncated;
    returns the copy and the images it owns."""
    coco = tmp_path / "coco"
    shutil.copytree(mini_sources["coco"], coco)
    fractions = get_task("jigsaw").params["split_fractions"]
    owned = [p for p in sorted(coco.glob("*2017/*.jpg"))
             if assign_split(p.stem, fractions, load_registry().defaults.seed) == "train"]
    for p in owned[:broken]:
        p.write_bytes(p.read_bytes()[:200])
    return coco, owned


def test_a_hint_never_suggests_n_zero(mini_sources, tmp_path, capsys):
    coco, _ = _break_images(mini_sources, tmp_path, broken=None)
    assert _build("jigsaw", "--split", "train", "--source-root", str(coco), "--out",
                  str(tmp_path / "out"), "--n", "3") == 1
    err = capsys.readouterr().err
    assert "only 0 of 3" in err and "--n 0" not in err and "check --source-root" in err


def test_skipped_images_are_named_in_the_log(mini_sources, tmp_path, caplog):
    coco, owned = _break_images(mini_sources, tmp_path, broken=3)
    n = len(owned) - 3  # forces the builder to visit every owned image
    with caplog.at_level(logging.WARNING, logger="builders.build"):
        assert _build("jigsaw", "--split", "train", "--source-root", str(coco), "--out",
                      str(tmp_path / "out"), "--n", str(n)) == 0
    for path in owned[:3]:
        assert caplog.text.count(f"skipped image {path} ") == 1, caplog.text
    manifest = read_manifest(split_dir(tmp_path / "out", "jigsaw", "train"))
    assert manifest["rejected"] == {"unreadable_image": 3}


def test_every_task_declares_its_builder_parameters():
    """Each task's builder declares the keys of its [tasks.<name>.params] (so a misspelt one
    fails when tasks.toml is loaded), and every declared key without a default is in the file."""
    from dataclasses import MISSING, fields

    from builders.registry import BuilderParams, builder_params

    registry = load_registry()
    for spec in registry.tasks.values():
        schema = builder_params(spec)
        assert schema is not None and issubclass(schema, BuilderParams), spec.name
        required = {f.name for f in fields(schema)
                    if f.default is MISSING and f.default_factory is MISSING}
        assert required <= set(spec.params), (spec.name, required - set(spec.params))
