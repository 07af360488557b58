"""De-duplication throughput against the CLIP-embedding floor; prints JSON.

Writes a synthetic built tree (Localization: `--n-ref` test images, `--n-train` train and a
quarter as many val examples, 10% of them planted near-duplicates of test images), then times:
- each signal alone: decode + hashes + views (`image_signals`), pHash alone, the pair
  confirmation (`compare`: alignment, pHash, SSIMs) and a bare scikit-image SSIM of two views;
- the floor: building the CLIP model and embedding every image once (decode, preprocess,
  forward pass, batched, on the same number of threads): what no dedup run can avoid;
- the whole `dedup` command on a cold embedding cache, and again on the warm cache (on a fresh
  copy of the unfiltered tree, so the second run does the same work minus the embeddings).
The ratio end-to-end / floor is the overhead of everything but CLIP (target <= 1.3). Peak memory
is the process's maximum resident set size after each phase.

    python bench/bench_dedup.py [--n-train 300] [--n-ref 50] [--model ViT-B-32] [--device cpu]
    python bench/bench_dedup.py --calibration-set DIR   # real photos for `dedup calibrate`
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from builders.imaging import decode_bytes, encode_image
from builders.io import split_dir, write_records
from builders.manifest import build_manifest, record_entry
from builders.miniature import synthetic_image
from builders.record import Record, canonical_json, make_idx
from builders.registry import load_registry
from dedup.calibrate import TRANSFORMS
from dedup.cli import main as dedup_main
from dedup.compare import compare
from dedup.config import load_config
from dedup.embed import ClipEmbedder
from dedup.signals import image_signals, phash64

TASK = "localization"


def _record(split: str, n: int, data: bytes) -> Record:
    spec = load_registry().resolve(TASK)
    return Record(idx=make_idx(spec, split, n), question=spec.question, sub_task=spec.sub_task,
                  images=[data], choices=list(spec.choices), answer="(A)", prompt=spec.prompt,
                  explanation="", task=TASK, split=split,
                  source=canonical_json({"dataset": "synthetic", "source_images": []}))


def _write(built: Path, split: str, images: list[bytes]) -> None:
    reg = load_registry()
    records = [_record(split, k + 1, b) for k, b in enumerate(images)]
    manifest = build_manifest(reg.resolve(TASK), reg, split, 0, [record_entry(r) for r in records],
                              Counter(), {"sha256": "", "files": 0}, "jpeg")
    write_records(records, split_dir(built, TASK, split), manifest)


def make_tree(built: Path, n_ref: int, n_train: int, size: tuple[int, int]) -> dict[str, int]:
    rng = np.random.default_rng(0)
    refs = [synthetic_image(np.random.default_rng(10_000 + i), *size) for i in range(n_ref)]
    _write(built, "test", [encode_image(im) for im in refs])
    kinds = list(TRANSFORMS)
    planted = 0
    for split, n in (("train", n_train), ("val", max(1, n_train // 4))):
        images = []
        for k in range(n):
            if rng.random() < 0.1:
                ref = refs[int(rng.integers(n_ref))]
                images.append(encode_image(TRANSFORMS[kinds[k % len(kinds)]](ref, rng)))
                planted += 1
            else:
                images.append(encode_image(synthetic_image(np.random.default_rng(k + 99_000 * len(split)), *size)))
        _write(built, split, images)
    return {"reference_images": n_ref, "train_val_images": n_train + max(1, n_train // 4),
            "planted": planted}


def _all_images(built: Path) -> list[bytes]:
    from builders.io import read_split
    return [b for s in ("test", "train", "val") for r in read_split(split_dir(built, TASK, s)) for b in r.images]


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else float("inf")


def _maxrss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def bench_signals(images: list[bytes], cfg) -> dict:
    t = time.perf_counter()
    sigs = [image_signals(b, cfg.view_size, cfg.blur_sigma)[0] for b in images]
    t_sig = time.perf_counter() - t
    decoded = [decode_bytes(b) for b in images[:200]]
    t = time.perf_counter()
    for im in decoded:
        phash64(im)
    t_phash = time.perf_counter() - t
    pairs = [(sigs[i], sigs[(i * 7 + 3) % len(sigs)]) for i in range(min(300, len(sigs)))]
    t = time.perf_counter()
    for a, b in pairs:
        compare(a, b, cfg)
    t_cmp = time.perf_counter() - t
    from skimage.metrics import structural_similarity
    t = time.perf_counter()
    for a, b in pairs:
        structural_similarity(a.view, b.view, data_range=255)
    t_ssim = time.perf_counter() - t
    return {
        "decode_hash_views_images_per_s": _rate(len(images), t_sig),
        "phash_images_per_s": _rate(len(decoded), t_phash),
        "confirm_pairs_per_s": _rate(len(pairs), t_cmp),
        "ssim_view_pairs_per_s": _rate(len(pairs), t_ssim),
    }


def clip_floor(images: list[bytes], cfg, model: str, pretrained: str | None, device: str) -> dict:
    """Build the model and embed every image once: decode + preprocess on threads, one batch
    ahead of the forward pass (the same pipeline shape as `dedup.analyse`)."""
    t0 = time.perf_counter()
    emb = ClipEmbedder(model, pretrained, device, cfg.seed)
    t_build = time.perf_counter() - t0

    def prep(b: bytes):
        return emb.prepare(decode_bytes(b))

    bs = cfg.batch_size
    with ThreadPoolExecutor(cfg.workers) as pool:
        futures = [pool.submit(prep, b) for b in images[:bs]]
        for start in range(0, len(images), bs):
            batch = [f.result() for f in futures]
            futures = [pool.submit(prep, b) for b in images[start + bs:start + 2 * bs]]
            emb.encode(batch)
    total = time.perf_counter() - t0
    return {"seconds": round(total, 2), "model_build_seconds": round(t_build, 2),
            "images_per_s": _rate(len(images), total - t_build)}


def run_dedup(built: Path, cache: Path, model: str, pretrained: str, device: str) -> float:
    argv = ["--against", "blink", "--built", str(built), "--cache", str(cache), "--model", model,
            "--pretrained", pretrained, "--device", device, "--no-progress"]
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = dedup_main(argv)
    if rc not in (0, 1):
        raise SystemExit(f"dedup failed with exit status {rc}")
    return time.perf_counter() - t


def write_calibration_set(out: Path) -> None:
    """A built Localization test split of real photographs (scikit-image's sample images), LFW
    faces (one layout, many people: hard negatives for pHash) and plain-background object shots
    (hard negatives for SSIM), for `dedup calibrate --against blink --built OUT`."""
    from skimage import data

    photos = []
    for name in ("astronaut", "camera", "chelsea", "coffee", "coins", "hubble_deep_field",
                 "immunohistochemistry", "moon", "retina", "rocket", "brick", "grass", "gravel",
                 "page", "text", "horse", "cell", "colorwheel"):
        a = np.asarray(getattr(data, name)())
        if a.dtype != np.uint8:
            a = (a * 255).astype(np.uint8) if a.max() <= 1 else a.astype(np.uint8)
        photos.append(Image.fromarray(a).convert("RGB"))
    faces = [Image.fromarray((f * 255).astype(np.uint8)).convert("RGB").resize((200, 200), Image.BICUBIC)
             for f in data.lfw_subset()[:40]]
    objects = []
    for s in range(20):
        rng = np.random.default_rng(s)
        img = Image.new("RGB", (400, 300), (245, 245, 245))
        draw = ImageDraw.Draw(img)
        for _ in range(3):
            x, y, w, h = rng.uniform(100, 250), rng.uniform(60, 180), rng.uniform(30, 120), rng.uniform(30, 100)
            draw.ellipse((x, y, x + w, y + h), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        objects.append(img)
    _write(out, "test", [encode_image(im) for im in photos + faces + objects])
    print(f"wrote {len(photos)} photos, {len(faces)} faces, {len(objects)} object shots to "
          f"{split_dir(out, TASK, 'test')}\nnow: dedup calibrate --against blink --built {out} "
          f"--tasks {TASK}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, default=300)
    ap.add_argument("--n-ref", type=int, default=50)
    ap.add_argument("--size", default="400x300", help="synthetic image size WxH")
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--pretrained", default="none")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--calibration-set", type=Path, default=None)
    args = ap.parse_args()
    if args.calibration_set:
        write_calibration_set(args.calibration_set)
        return
    import open_clip  # noqa: F401  (import cost is paid once, outside every timing)

    cfg = load_config()
    size = tuple(int(x) for x in args.size.split("x"))
    pretrained = None if args.pretrained.lower() == "none" else args.pretrained
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = make_tree(tmp / "pristine", args.n_ref, args.n_train, size)
        images = _all_images(tmp / "pristine")
        shutil.copytree(tmp / "pristine", tmp / "cold")
        cold = run_dedup(tmp / "cold", tmp / "cache", args.model, args.pretrained, args.device)
        rss_e2e = _maxrss_mib()
        shutil.copytree(tmp / "pristine", tmp / "warm")
        warm = run_dedup(tmp / "warm", tmp / "cache", args.model, args.pretrained, args.device)
        floor = clip_floor(images, cfg, args.model, pretrained, args.device)
        signals = bench_signals(images, cfg)
        summary = json.loads((tmp / "cold" / "dedup-blink" / "summary.json").read_text())
        t = summary["tasks"][TASK]
        removed = sum(s["removed_now"] for s in t["splits"].values())
    print(json.dumps({
        "benchmark": "dedup",
        "model": args.model, "pretrained": args.pretrained, "device": args.device,
        "image_size": list(size), "workers": cfg.workers, "batch_size": cfg.batch_size,
        **data,
        "images_total": len(images),
        "candidates": t["candidates"], "removed": removed,
        "signals": {**signals, "clip_embed_images_per_s": floor["images_per_s"]},
        "floor_clip_seconds": floor["seconds"], "floor_model_build_seconds": floor["model_build_seconds"],
        "end_to_end_seconds": round(cold, 2),
        "end_to_end_stage_seconds": t["seconds"],
        "end_to_end_cached_seconds": round(warm, 2),
        "ratio_end_to_end_over_floor": round(cold / floor["seconds"], 3),
        "peak_rss_mib_after_end_to_end": rss_e2e,
        "peak_rss_mib_overall": _maxrss_mib(),
    }, indent=2))


if __name__ == "__main__":
    main()
