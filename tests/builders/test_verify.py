"""`python -m builders.verify` detects any change in ids, answers or image bytes."""

from __future__ import annotations

import json

from builders.io import split_dir
from builders.verify import main

from .conftest import build_split


def test_verify_identical_and_changed(mini_sources, tmp_path, capsys):
    build_split("jigsaw", "val", mini_sources["coco"], tmp_path, 2)
    built = split_dir(tmp_path, "jigsaw", "val")
    ref = json.loads((built / ".livr" / "manifest.json").read_text())
    ref_path = tmp_path / "ref.json"
    ref_path.write_text(json.dumps(ref))
    assert main([str(built), str(ref_path)]) == 0
    assert "identical" in capsys.readouterr().out
    ref["records"][1]["images"][0] = "0" * 64
    ref_path.write_text(json.dumps(ref))
    assert main([str(built), str(ref_path)]) == 1
    assert "livr_val_Jigsaw_2" in capsys.readouterr().out
