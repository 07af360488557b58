"""A miniature built tree with planted near-duplicates of test images, written straight through
`builders.io.write_records` (no builder runs), and the helpers to make and snapshot it.

Images are 320 x 240 synthetic scenes (large enough that drawn markers keep BLINK's proportions;
`builders.drawing` has minimum sizes that would dominate much smaller images). Every planted duplicate is a transform of one reference
(test) image; every look-alike shares a reference's colour field or its shape layout but is a
different image. `Plan` records which idx is which, so tests can compare exactly.
"""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from builders.drawing import draw_boxes, draw_points
from builders.imaging import encode_image
from builders.io import split_dir, write_records
from builders.manifest import build_manifest, record_entry
from builders.miniature import synthetic_image
from builders.record import Record, canonical_json, make_idx
from builders.registry import load_registry

W, H = 320, 240
TINY = ["--model", "tiny", "--pretrained", "none", "--device", "cpu", "--no-progress"]


# ---- images -------------------------------------------------------------------------------------

def reference_image(seed: int) -> Image.Image:
    return synthetic_image(np.random.default_rng(seed), W, H)


def scene(field_seed: int, shape_seed: int, colour_seed: int) -> Image.Image:
    """synthetic_image's recipe with the colour field, the shape layout and the shape colours
    drawn from separate seeds, so a look-alike can share one of them with a reference."""
    low = np.random.default_rng(field_seed).uniform(0, 255, size=(4, 4, 3)).astype(np.uint8)
    base = Image.fromarray(low, "RGB").resize((W, H), Image.BICUBIC)
    noise = np.random.default_rng([field_seed, shape_seed, colour_seed]).normal(0, 12, size=(H, W, 3))
    img = Image.fromarray(np.clip(np.asarray(base, dtype=np.float64) + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    shapes, colours = np.random.default_rng(shape_seed), np.random.default_rng(colour_seed)
    for _ in range(6):
        x0, y0 = shapes.uniform(0, W), shapes.uniform(0, H)
        w, h = shapes.uniform(0.05, 0.35) * W, shapes.uniform(0.05, 0.35) * H
        ellipse = shapes.random() < 0.5
        colour = tuple(int(c) for c in colours.integers(0, 256, size=3))
        (draw.ellipse if ellipse else draw.rectangle)((x0, y0, x0 + w, y0 + h), fill=colour)
    return img


def lookalike_colours(seed: int) -> Image.Image:
    """Same colour field as scene(seed, seed, seed), different shapes and shape colours."""
    return scene(seed, seed + 5000, seed + 6000)


def lookalike_layout(seed: int) -> Image.Image:
    """Same shape layout as scene(seed, seed, seed), different colour field and shape colours."""
    return scene(seed + 7000, seed, seed + 8000)


def resized(img: Image.Image) -> Image.Image:
    return img.resize((round(W * 0.6), round(H * 0.7)), Image.BICUBIC)


def reencoded(img: Image.Image) -> Image.Image:
    return Image.open(io.BytesIO(encode_image(img, "jpeg", 55))).convert("RGB")


def cropped(img: Image.Image) -> Image.Image:
    w, h = img.size
    return img.crop((round(0.06 * w), round(0.04 * h), round(0.96 * w), round(0.94 * h)))


def boxed(img: Image.Image) -> Image.Image:
    """Two lettered boxes, placed relative to the image size."""
    w, h = img.size
    return draw_boxes(img, {"A": [0.19 * w, 0.17 * h, 0.69 * w, 0.75 * h],
                            "B": [0.31 * w, 0.29 * h, 0.87 * w, 0.87 * h]})


def pointed(img: Image.Image) -> Image.Image:
    """REF and A-D rings, placed relative to the image size."""
    w, h = img.size
    at = {"REF": (0.25, 0.5), "A": (0.62, 0.25), "B": (0.75, 0.75), "C": (0.12, 0.17), "D": (0.5, 0.67)}
    return draw_points(img, {k: (x * w, y * h) for k, (x, y) in at.items()})


def jittered(img: Image.Image) -> Image.Image:
    return ImageEnhance.Color(ImageEnhance.Brightness(img).enhance(1.08)).enhance(0.92)


def blacked_out(img: Image.Image) -> Image.Image:
    """Most of the image painted over: the rendered copy no longer resembles the source."""
    out = img.copy()
    ImageDraw.Draw(out).rectangle((0, 0, out.width, round(out.height * 0.75)), fill=(0, 0, 0))
    return out


# ---- records and splits -------------------------------------------------------------------------

def jpeg(img: Image.Image) -> bytes:
    return encode_image(img, "jpeg", 95)


def record(task: str, split: str, n: int, images: list[bytes], source: dict | None = None) -> Record:
    spec = load_registry().resolve(task)
    answer = "(A)" if spec.answer_type == "mcq" else "3"
    return Record(
        idx=make_idx(spec, split, n), question=spec.question, sub_task=spec.sub_task,
        images=images, choices=list(spec.choices), answer=answer, prompt=spec.prompt,
        explanation="", task=spec.name, split=split,
        source=canonical_json(source or {"dataset": "synthetic", "source_images": []}),
    )


def write_split(built: Path, task: str, split: str, records: list[Record]) -> Path:
    reg = load_registry()
    spec = reg.resolve(task)
    manifest = build_manifest(spec, reg, split, 42, [record_entry(r) for r in records], Counter(),
                              {"sha256": "0" * 64, "files": 0}, "jpeg")
    return write_records(records, split_dir(built, task, split), manifest, shard_rows=4)


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ---- the planted scenario -----------------------------------------------------------------------

@dataclass
class Plan:
    built: Path
    sources: Path
    dups: dict[str, set[str]] = field(default_factory=dict)       # task -> idx to be removed
    keep: dict[str, set[str]] = field(default_factory=dict)       # task -> idx to be kept
    lookalikes: dict[str, set[str]] = field(default_factory=dict)  # subset of keep
    partial: set[str] = field(default_factory=set)                # pair task, one image shared
    raw_only: str = ""                                            # dup visible only in the raw image


class Splits:
    """Collects one task's train/val records and what each one is."""

    def __init__(self, plan: Plan, task: str) -> None:
        self.plan, self.task = plan, task
        self.rows: dict[str, list[Record]] = {"train": [], "val": []}
        plan.dups.setdefault(task, set())
        plan.keep.setdefault(task, set())
        plan.lookalikes.setdefault(task, set())

    def add(self, split: str, images: list[Image.Image], kind: str, source: dict | None = None) -> str:
        rows = self.rows[split]
        r = record(self.task, split, len(rows) + 1, [jpeg(i) for i in images], source)
        rows.append(r)
        {"dup": self.plan.dups, "keep": self.plan.keep, "lookalike": self.plan.keep}[kind][
            self.task].add(r.idx)
        if kind == "lookalike":
            self.plan.lookalikes[self.task].add(r.idx)
        return r.idx

    def write(self) -> None:
        for split, rows in self.rows.items():
            write_split(self.plan.built, self.task, split, rows)


def make_plan(root: Path) -> Plan:
    """Localization (single image, raw sources), Art Style (three images) and Semantic
    Correspondence (pair-aware) against their test splits."""
    plan = Plan(built=root / "built", sources=root / "sources")
    coco = plan.sources / "coco" / "train2017"
    coco.mkdir(parents=True)

    # Localization: reference i is scene(i) with boxes drawn, as BLINK's images are.
    loc_refs = [scene(s, s, s) for s in (1, 2, 3, 4)]
    write_split(plan.built, "localization", "test",
                [record("localization", "test", k + 1, [jpeg(boxed(im))]) for k, im in enumerate(loc_refs)])
    loc = Splits(plan, "localization")

    def coco_source(name: str, raw: Image.Image | None) -> dict:
        if raw is not None:
            raw.save(coco / name, format="JPEG", quality=95)
        return {"dataset": "coco", "source_images": [f"train2017/{name}"]}

    loc.add("train", [pointed(loc_refs[0])], "dup", coco_source("a.jpg", loc_refs[0]))
    loc.add("train", [boxed(resized(loc_refs[1]))], "dup", coco_source("b.jpg", loc_refs[1]))
    loc.add("val", [boxed(cropped(loc_refs[2]))], "dup", coco_source("c.jpg", loc_refs[2]))
    # Only the raw source image is a copy: the rendered one is painted over.
    plan.raw_only = loc.add("train", [blacked_out(loc_refs[3])], "dup", coco_source("d.jpg", loc_refs[3]))
    for s in (1, 2, 3, 4):
        loc.add("train", [boxed(lookalike_colours(s))], "lookalike", coco_source(f"lc{s}.jpg", lookalike_colours(s)))
        loc.add("val", [boxed(lookalike_layout(s))], "lookalike", coco_source(f"ll{s}.jpg", None))
    for s in (50, 51, 52):
        loc.add("train", [boxed(scene(s, s, s))], "keep", coco_source(f"k{s}.jpg", scene(s, s, s)))
    loc.write()

    # Art Style: three images per example; references are plain synthetic images.
    art_refs = [[reference_image(100 + 3 * k + j) for j in range(3)] for k in range(3)]
    write_split(plan.built, "art_style", "test",
                [record("art_style", "test", k + 1, [jpeg(i) for i in imgs]) for k, imgs in enumerate(art_refs)])
    art = Splits(plan, "art_style")
    other = [reference_image(300 + k) for k in range(12)]
    art.add("train", [other[0], other[1], reencoded(art_refs[0][1])], "dup")
    art.add("train", [jittered(art_refs[1][0]), other[2], other[3]], "dup")
    art.add("val", [other[4], resized(art_refs[2][2]), other[5]], "dup")
    art.add("train", [art_refs[0][0], other[6], other[7]], "dup")  # byte-level copy of a test image
    art.add("train", [other[8], other[9], other[10]], "keep")
    art.add("val", [other[11], reference_image(400), reference_image(401)], "keep")
    art.write()

    # Semantic Correspondence: a pair is a duplicate only when both images match one test pair.
    pairs = [(scene(200 + k, 200 + k, 200 + k), scene(210 + k, 210 + k, 210 + k)) for k in range(3)]
    write_split(plan.built, "semantic_correspondence", "test",
                [record("semantic_correspondence", "test", k + 1, [jpeg(pointed(a)), jpeg(pointed(b))])
                 for k, (a, b) in enumerate(pairs)])
    sc = Splits(plan, "semantic_correspondence")
    (a0, b0), (a1, b1), (a2, _b2) = pairs
    sc.add("train", [pointed(resized(a0)), pointed(b0)], "dup")                 # aligned
    sc.add("train", [pointed(cropped(b1)), pointed(a1)], "dup")                 # swapped
    plan.partial.add(sc.add("train", [pointed(a2), pointed(scene(260, 260, 260))], "keep"))
    sc.add("val", [pointed(a0), pointed(b1)], "keep")                           # halves of two pairs
    sc.add("val", [pointed(lookalike_colours(200)), pointed(lookalike_layout(210))], "lookalike")
    sc.add("train", [pointed(scene(270, 270, 270)), pointed(scene(271, 271, 271))], "keep")
    sc.write()
    return plan


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> Plan:
    return make_plan(tmp_path_factory.mktemp("dedup"))
