"""`dedup calibrate` on the planted tree's test splits: positives, negatives, thresholds."""

from __future__ import annotations

import json

from dedup.calibrate import TRANSFORMS
from dedup.cli import main

from .conftest import TINY, tree_digest


def test_calibrate_prints_thresholds_with_precision_and_recall(plan, tmp_path, capsys):
    before = tree_digest(plan.built)
    out = tmp_path / "cal.json"
    rc = main(["calibrate", "--against", "blink", "--built", str(plan.built), "--cache",
               str(tmp_path / "c"), "--json", str(out), *TINY])
    assert rc == 0
    text = capsys.readouterr().out
    for signal in ("cosine", "phash", "ssim_raw", "ssim_blur", "ssim_median"):
        assert signal in text
    assert "precision" in text and "recall by transform" in text and "illustrative" in text
    report = json.loads(out.read_text())
    refs = report["references"]
    assert refs == 4 + 9 + 6  # every distinct test image of the three tasks
    assert report["positives"] == refs * len(TRANSFORMS) and report["negatives"] > refs
    assert report["configured_rule"] == "paper" and "rule paper (configured)" in text
    assert set(report["rules"]) == {"paper", "any"} and "rule any " in text
    for rule in report["rules"].values():
        assert set(rule["recall_by_transform"]) == set(TRANSFORMS)
        assert rule["precision"] == 1.0 and rule["false_positives"] == 0
    # the planted tree's copies: every one caught by either rule set (tasks.toml records this)
    assert report["rules"]["paper"]["recall"] == report["rules"]["any"]["recall"] == 1.0
    assert tree_digest(plan.built) == before  # calibration reads, never writes
