"""PixMo image downloads against a local server, without and with the URL-keyed cache; JSON.

Writes N synthetic JPEGs (640x480, like photos) under the miniature server's web folder, serves
them on 127.0.0.1 and fetches every URL twice through `builders.download.Downloader`: cold (empty
cache: HTTP + size cap + full image check + cache write) and warm (served from the cache). The
floor is decoding the same JPEGs from disk once, the work a cache hit cannot avoid.

    python bench/bench_downloads.py [--n 300] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from builders.download import DownloadConfig, Downloader, ImageCache
from builders.imaging import load_image
from builders.miniature import pixmo, synthetic_image
from builders.registry import get_task


def _fetch_all(folder: Path, urls: list[str], config: DownloadConfig) -> tuple[float, int]:
    dl = Downloader(ImageCache(folder), config)
    t0 = time.perf_counter()
    futures = [dl.submit(u) for u in urls]
    ok = sum(f.result().ok for f in futures)
    dl.close()
    return time.perf_counter() - t0, ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=None)
    args = ap.parse_args()
    params = dict(get_task("counting").params)
    if args.concurrency:
        params["download_concurrency"] = args.concurrency
    config = DownloadConfig.from_params(params)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        web = root / pixmo.WEB / "img"
        web.mkdir(parents=True)
        rng = np.random.default_rng(0)
        files = []
        for i in range(args.n):
            f = web / f"bench_{i:05d}.jpg"
            synthetic_image(rng, 640, 480).save(f, quality=90)
            files.append(f)
        t0 = time.perf_counter()
        for f in files:
            load_image(f)
        floor_s = time.perf_counter() - t0
        with pixmo.serve(root) as server:
            urls = [f"{server.base_url}/img/{f.name}" for f in files]
            cold_s, ok_cold = _fetch_all(root / "cache", urls, config)
            hits_after_cold = server.total
            warm_s, ok_warm = _fetch_all(root / "cache", urls, config)
            warm_requests = server.total - hits_after_cold
    n = args.n
    print(json.dumps({
        "benchmark": "downloads",
        "n": n,
        "concurrency": config.concurrency,
        "ok": [ok_cold, ok_warm],
        "cold_urls_per_s": round(n / cold_s, 1),
        "warm_urls_per_s": round(n / warm_s, 1),
        "floor_decode_per_s": round(n / floor_s, 1),
        "ratio_cold_over_warm": round(cold_s / warm_s, 2),
        "ratio_warm_over_floor": round(warm_s / floor_s, 2),
        "requests_on_warm_run": warm_requests,
    }, indent=2))


if __name__ == "__main__":
    main()
