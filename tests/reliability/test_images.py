"""The pixel cap and decompression bombs, for every image reader: builders (one end to end, and
the static fact that every builder decodes through `builders.imaging`), MID's OpenCV/OpenEXR
albedo reader, dedup's signals, the harness's samples; the cap is read from tasks.toml."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
from PIL import Image

from builders import build as build_module
from builders import miniature
from builders.build import BuildContext
from builders.imaging import TOO_LARGE, UnreadableImage, decode_bytes, load_image
from builders.record import Record
from builders.registry import DEFAULT_REGISTRY, REGISTRY_ENV, get_task
from builders.sources import mid
from builders.tasks import art_style
from dedup.signals import image_signals
from harness.samples import record_images
from tests.builders.test_download import png_declaring

REPO = Path(__file__).resolve().parents[2]
HUGE = png_declaring(100_000, 100_000)  # 10 G pixels: PIL's own bomb error fires at open
OVER_CAP = png_declaring(10_000, 10_000)  # 100 MP: PIL only warns; our cap refuses


@pytest.fixture(autouse=True)
def _no_bomb_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


@pytest.fixture
def small_cap(tmp_path, monkeypatch):
    """The real registry with `max_image_pixels = 1000`, chosen through $LIVR_TASKS_TOML."""
    text = DEFAULT_REGISTRY.read_text(encoding="utf-8")
    assert "\nmax_image_pixels = 89_478_485\n" in text
    path = tmp_path / "tasks.toml"
    path.write_text(text.replace("\nmax_image_pixels = 89_478_485\n",
                                 "\nmax_image_pixels = 1000\n"))
    monkeypatch.setenv(REGISTRY_ENV, str(path))
    return path


@pytest.mark.parametrize("data", [HUGE, OVER_CAP], ids=["pil-bomb", "over-cap"])
def test_bombs_are_refused_from_the_header(tmp_path, data):
    path = tmp_path / "bomb.jpg"  # the name lies too; the content decides
    path.write_bytes(data)
    with pytest.raises(UnreadableImage) as err:
        load_image(path)
    assert err.value.reason == TOO_LARGE and str(path) in str(err.value)
    with pytest.raises(UnreadableImage, match="image_too_large"):
        decode_bytes(data, "row 7")


def test_the_cap_is_read_from_tasks_toml(tmp_path, small_cap):
    path = tmp_path / "a.png"
    Image.new("RGB", (40, 30)).save(path)  # 1200 pixels
    with pytest.raises(UnreadableImage, match=r"40x30 = 1,200 pixels, over max_image_pixels = "
                                              r"1,000 in tasks.toml \[defaults\]"):
        load_image(path)
    Image.new("RGB", (40, 25)).save(path)  # 1000 pixels: at the cap is fine
    assert load_image(path).size == (40, 25)


def test_a_bomb_in_a_builder_source_is_counted_like_an_unreadable_image(tmp_path, monkeypatch):
    root = miniature.write("artbench", tmp_path)
    style = root / "train" / "ukiyo_e"  # the smallest style: all of its images are in the pool
    bombs = sorted(style.iterdir())
    for i, path in enumerate(bombs):
        path.write_bytes(HUGE if i % 2 else OVER_CAP)
    visited: list[Path] = []

    def spy(path):
        visited.append(Path(path))
        return load_image(path)

    monkeypatch.setattr(build_module, "load_image", spy)
    spec = get_task("art_style")
    total = 0
    for split in ("train", "val"):  # each pool image belongs to one of them
        ctx = BuildContext(spec, split, root, 42)
        examples = list(art_style.build(ctx))  # visits candidates until the pool is spent
        tried = [p for p in visited if p in bombs]
        assert examples and ctx.rejections[TOO_LARGE] == len(tried)  # counted, never fatal
        assert not {str(p.relative_to(root)) for p in bombs} & {
            rel for e in examples for rel in e.source["source_images"]}
        total += len(tried)
        visited.clear()
    assert total > 0


PATTERN = r"Image\.open\(|cv2\.imread|cv2\.imdecode|OpenEXR\.File\(|imageio|skimage\.io"


def test_every_builder_decodes_through_the_one_loader():
    """No module of ours opens an image except `builders.imaging` (and MID's albedo reader,
    which checks the header against the same cap first: tested below). The miniatures only
    write images."""
    found = subprocess.run(
        ["git", "grep", "-n", "-E", PATTERN, "--", "builders", "dedup", "harness", "livr_core",
         ":!builders/miniature"],
        cwd=REPO, capture_output=True, text=True, check=False,
    ).stdout.splitlines()
    files = sorted({line.split(":", 1)[0] for line in found})
    assert files == ["builders/imaging.py", "builders/sources/mid.py"], found


def test_mid_albedo_readers_apply_the_cap(tmp_path, small_cap):
    png = tmp_path / "albedo.png"
    png.write_bytes(OVER_CAP)
    exr = tmp_path / "albedo.exr"
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                 {"RGB": np.zeros((40, 30, 3), "f")}).write(str(exr))  # 1200 > 1000 pixels
    for path in (png, exr):
        with pytest.raises(UnreadableImage) as err:
            mid.read_albedo(path, png_is_srgb=True)
        assert err.value.reason == TOO_LARGE and str(path) in str(err.value)


def test_dedup_and_harness_readers_apply_the_cap():
    sig, img = image_signals(OVER_CAP, 64, 1.0)
    assert img is None and "image_too_large" in sig.error  # counted as unreadable, no crash
    record = Record(idx="test_Counting_3", question="q", sub_task="Counting",
                    images=[OVER_CAP], choices=[], answer="3", prompt="p", explanation="",
                    task="counting", split="test", source="{}")
    with pytest.raises(UnreadableImage, match="record test_Counting_3 of counting/test, image 1"):
        record_images(record)
