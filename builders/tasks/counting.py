"""Counting from PixMo-Count (paper A.1): open-ended, the integer count as text is the answer.

Every split keeps only rows whose image URL still resolves to an image (dead, timed-out,
non-image and too-large URLs are dropped and counted under their reason, see
`builders.download`). A downloaded image whose sha256 differs from `image_sha256` is KEPT: the
hashes are known to be stale, so the mismatch is only counted, under `sha256_mismatch` in the
manifest's `warnings` table, and both hashes are in the record's `source`.

- train (PixMo `train`): counts in [min_count, max_count]; rows whose URL or expected sha256 also
  occurs in PixMo validation/test are dropped (`image_in_official_eval_split`) so no image is in
  two of our splits, and a repeated URL is used once (`duplicate_url`). Each count's rows are
  shuffled into a pool; examples are taken round-robin over the counts in a seeded order, a count
  whose next row is dead moving on to its next row, so the counts stay uniform (within one) until
  a pool runs out. Visual near-duplicates of test images are the `dedup` stage's job.
- val / test (PixMo `validation` / `test`): the official rows whose URL resolves, in file order.

Downloads run `download_prefetch` rows ahead on `download_concurrency` threads while examples are
yielded in the seeded order. Every image and every definitive failure (404/410, not an image, too
large) is cached by URL (`builders.sources.pixmo.cache_dir`), so a rerun makes no request for
them; a transient failure (timeout, 5xx, refused connection, TLS error) is counted like a dead
URL but not cached, so the next run tries it again and may keep more examples (the build says
how many). Every skipped URL is logged with its reason. Images over the pixel cap
(`max_image_pixels`) are `too_large`.
Images keep their original resolution and stored orientation (no EXIF rotation; whether
PixMo's `points` assume one is UNCONFIRMED, they are provenance only here).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from builders.download import DownloadConfig, Downloader, Fetched, ImageCache, Lookahead
from builders.record import Example
from builders.registry import BuilderParams
from builders.sources import pixmo
from builders.sources.pixmo import PixmoRow

if TYPE_CHECKING:  # annotations only: checking tasks.toml imports no build driver
    from builders.build import BuildContext


@dataclass(frozen=True, kw_only=True)
class Params(BuilderParams):
    """PixMo-Count's `[tasks.<name>.params]` (meanings and values in tasks.toml), checked at load."""

    min_count: int
    max_count: int
    train_split: str
    val_split: str
    test_split: str
    download_timeout_s: float
    download_deadline_s: float
    download_retries: int
    download_backoff_s: float
    download_concurrency: int
    download_max_bytes: int
    download_prefetch: int

SHA256_WARNING = "sha256_mismatch"
log = logging.getLogger(__name__)


def _url(row: PixmoRow) -> str:
    return row.url


def _read(ctx: BuildContext, root: Path, split: str, candidates: bool = True) -> list[PixmoRow]:
    """A PixMo split's well-formed rows; its files join the source fingerprint. Malformed rows
    are counted when the split's rows are this build's candidates."""
    for f in pixmo.split_files(root, split):
        ctx.note_source(f)
    rows, malformed = pixmo.read_rows(root, split)
    for reason, k in sorted(malformed.items()) if candidates else ():
        ctx.reject(reason, k)
    return rows


def _example(ctx: BuildContext, row: PixmoRow, got: Fetched) -> Example | None:
    """The example of one row, or None after counting why it was dropped."""
    if not got.ok:
        ctx.reject(got.reason)
        return None
    img = ctx.load_image(got.path)
    if img is None:
        return None
    actual = hashlib.sha256(got.path.read_bytes()).hexdigest()
    if row.sha256 and actual != row.sha256:
        ctx.warn(SHA256_WARNING)
    return Example(
        images=[img],
        answer=str(row.count),
        fields={"label": row.label},
        source={
            "dataset": "pixmo",
            "source_images": [row.url],
            "url": row.url,
            "pixmo_split": row.split,
            "row": row.row,
            "count": row.count,
            "label": row.label,
            "points": [[round(x, 2), round(y, 2)] for x, y in row.points],  # float32 -> 0.01 px
            "image_sha256": {"expected": row.sha256, "actual": actual},
            "image_size": list(img.size),
        },
    )


def _live(ctx: BuildContext, stream: Lookahead[PixmoRow]) -> Iterator[Example]:
    for row, got in stream:
        example = _example(ctx, row, got)
        if example is not None:
            yield example


def _train_pools(ctx: BuildContext, root: Path, rows: list[PixmoRow]) -> dict[int, list[PixmoRow]]:
    """Eligible train rows by count, each pool shuffled, keyed in the seeded round-robin order."""
    p = ctx.params
    held_out = [r for split in (p["val_split"], p["test_split"])
                for r in _read(ctx, root, split, candidates=False)]
    held_out_urls = {r.url for r in held_out}
    held_out_shas = {r.sha256 for r in held_out} - {""}
    pools: dict[int, list[PixmoRow]] = {}
    seen: set[str] = set()
    for r in rows:
        if not p["min_count"] <= r.count <= p["max_count"]:
            ctx.reject("count_out_of_range")
        elif r.url in held_out_urls or r.sha256 in held_out_shas:
            ctx.reject("image_in_official_eval_split")
        elif r.url in seen:
            ctx.reject("duplicate_url")
        else:
            seen.add(r.url)
            pools.setdefault(r.count, []).append(r)
    order = [int(c) for c in ctx.rng("count_order").permutation(sorted(pools))]
    return {c: [pools[c][i] for i in ctx.rng("pool", c).permutation(len(pools[c]))] for c in order}


def build(ctx: BuildContext) -> Iterator[Example]:
    p = ctx.params
    root = pixmo.find_root(ctx.source_root)
    split = {"train": p["train_split"], "val": p["val_split"], "test": p["test_split"]}[ctx.split]
    rows = _read(ctx, root, split)
    depth = int(p["download_prefetch"])
    dl = Downloader(ImageCache(pixmo.cache_dir(root)), DownloadConfig.from_params(p))
    try:
        if ctx.split != "train":
            yield from _live(ctx, Lookahead(rows, _url, dl, depth))
            return
        pools = _train_pools(ctx, root, rows)
        # Every pool's downloads start now (Lookahead primes itself), not at its first turn.
        streams = {c: _live(ctx, Lookahead(pool, _url, dl, depth // max(1, len(pools))))
                   for c, pool in pools.items()}
        while streams:
            for c in list(streams):
                example = next(streams[c], None)
                if example is None:
                    del streams[c]
                else:
                    yield example
    finally:
        # Waits for every started download, so an identical rerun is served from the cache.
        dl.close()
        if dl.transient_failures:
            log.warning("%s/%s: %d URLs failed transiently (counted as skipped, not cached): a "
                        "rerun tries them again and may keep more examples", ctx.spec.name,
                        ctx.split, dl.transient_failures)
        if ctx.warnings[SHA256_WARNING]:
            log.warning("%s/%s: %d downloaded images differ from their image_sha256 (kept; see "
                        "source.image_sha256)", ctx.spec.name, ctx.split,
                        ctx.warnings[SHA256_WARNING])
