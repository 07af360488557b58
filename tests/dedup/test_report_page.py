"""index.html of a run where nothing is flagged: the page still shows the counts, the thresholds
in force (read from tasks.toml's [dedup] table) and the closest unflagged pairs with their scores
and the thresholds each one missed; rendered in headless Chromium when it is installed."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from dedup.cli import main
from dedup.config import load_config
from dedup.report import TOP_UNFLAGGED, rules_in_force
from tests.dedup.conftest import (
    TINY,
    boxed,
    jpeg,
    lookalike_colours,
    lookalike_layout,
    record,
    scene,
    write_split,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """Localization: 3 test images, 8 train + 2 val look-alikes and other scenes, no copies."""
    built = tmp_path_factory.mktemp("page") / "built"
    refs = [scene(s, s, s) for s in (1, 2, 3)]
    write_split(built, "localization", "test",
                [record("localization", "test", k + 1, [jpeg(boxed(im))])
                 for k, im in enumerate(refs)])
    train = [lookalike_colours(s) for s in (1, 2, 3)] + [lookalike_layout(s) for s in (1, 2, 3)]
    train += [scene(s, s, s) for s in (50, 51)]
    write_split(built, "localization", "train",
                [record("localization", "train", k + 1, [jpeg(boxed(im))])
                 for k, im in enumerate(train)])
    write_split(built, "localization", "val",
                [record("localization", "val", k + 1, [jpeg(boxed(scene(s, s, s)))])
                 for k, s in enumerate((60, 61))])
    assert main(["--against", "blink", "--built", str(built), "--tasks", "localization",
                 *TINY]) == 0
    report = built / "dedup-blink"
    return {"report": report, "html": (report / "index.html").read_text(encoding="utf-8"),
            "summary": json.loads((report / "summary.json").read_text()),
            "pairs": [json.loads(x) for x in (report / "pairs.jsonl").read_text().splitlines()]}


def _text(page_html: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page_html))


def test_nothing_is_flagged_and_the_page_says_so(page):
    assert not any(p["example_removed"] for p in page["pairs"])
    assert "Flagged (0)" in page["html"]
    assert "Nothing flagged: no pair met a rule." in page["html"]


def test_counts_are_on_the_page(page):
    text = " ".join(_text(page["html"]).split())
    task = page["summary"]["tasks"]["localization"]
    assert f"{task['reference']['images']} test images" in text
    assert f"{task['candidates']} pairs scored" in text
    assert f"{len(page['pairs'])} candidate pair(s) scored" in text
    for split in ("train", "val"):
        s = task["splits"][split]
        assert f"localization {split} {s['examples']} {s['images']} 0 0 {s['kept']}" in text


def test_the_thresholds_in_force_come_from_the_config(page):
    text = " ".join(_text(page["html"]).split())
    name, thresholds = rules_in_force(load_config().public())
    assert thresholds and f"rule set {name}" in text
    for key, value in thresholds.items():
        assert f"{key} {value}" in text
    for key, value in load_config().public()["borderline"].items():
        assert f"{key} {value}" in text


def test_the_closest_unflagged_pairs_are_shown_with_their_checks(page):
    section = page["html"].split("Closest unflagged (")[1]
    shown = int(section.split(")")[0])
    assert shown == min(TOP_UNFLAGGED, len(page["pairs"])) > 0
    assert section.count("<div class=pair>") == shown
    # The closest pair by blurred SSIM is among them, with its scores and its unmet thresholds.
    best = max(page["pairs"], key=lambda p: p["ssim_blur"])
    label = f"{best['candidate']['split']}/{best['candidate']['idx']}/image_1"
    assert label in section
    assert f"blurred {best['ssim_blur']:.3f}" in section
    assert section.count("no rule fired") + section.count("borderline") >= shown
    assert section.count("class=unmet") >= shown  # every unflagged pair misses a threshold
    assert "data:image/jpeg;base64," in section


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_page_renders_in_headless_chromium(page, tmp_path):
    shot = tmp_path / "page.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", f"--screenshot={shot}",
                    "--window-size=1400,2000", (page["report"] / "index.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2000, 1400)
    # Not a blank page: the text, tables and thumbnails give the picture structure top to bottom.
    for band in np.array_split(pixels[:1200], 4):
        assert band.std() > 10
