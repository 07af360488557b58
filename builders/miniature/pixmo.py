"""Miniature PixMo-Count: the three parquet files with the real columns, and the images they link.

`write(root)` writes `root/pixmo-count/data/{train,validation,test}-00000-of-00001.parquet` and
`root/pixmo-web/` (the files a web server would hold). URLs point at a placeholder host that never
resolves (`http://pixmo.invalid`), and the builder's download cache inside the dataset folder is
pre-filled with what a download run would have found (images for live URLs, dead markers for the
others), so builds work offline. `write(root, base_url=...)` links to a real server instead and
leaves the cache empty; `serve(root)` is that server: 127.0.0.1 on a free port, counting hits.

The URL path says what the server does, so tests know the truth from the URL alone:
`/img/<f>` serves the image; `/missing/<f>` answers 404; `/slow/<f>` sleeps `slow_s` before
serving; `/html/<f>` answers 200 with an HTML page.

Images are square and hold `count` red squares, at most one per cell of a 4x4 grid, on plain
grey; the square centres are the row's `points`. Every object is plainly visible and, at the demo's
tiny model's 56-px input, fills a patch of its own, so counting is learnable from the pixels
(`harness demo`). Two rows with the same cells hold the same picture (up to size and encoding):
that is what the dedup stage is for.

Rows (file order): train has 3 live rows per count 2..10 (one with a wrong `image_sha256`), live
rows with counts 0, 1, 11, 14, one dead row each of 404 / slow / HTML with an in-range count, a
repeated URL, a row whose URL is also a validation URL and a row with a null count. Validation
has 8 rows (one 404, one HTML), test 6 rows (one slow); eval points are empty lists as in the
real release. `write(root, scale=k)` gives train 3k live rows per count 2..10 and appends
9(k - 1) live rows (counts 2..10 in turn) to validation and to test, the rest unchanged.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from builders.download import DEAD_URL, NOT_AN_IMAGE, URL_TIMEOUT, ImageCache
from builders.sources.pixmo import cache_dir

TOP = "pixmo-count"
WEB = "pixmo-web"
PLACEHOLDER = "http://pixmo.invalid"
LABELS = ("people", "cars", "apples", "birds", "chairs")
HTML = b"<!doctype html><html><body>This image is no longer available.</body></html>"
# What a download of each kind of URL ends as (for the offline cache).
DEAD = {"missing": (DEAD_URL, "HTTP 404"), "slow": (URL_TIMEOUT, "timed out"),
        "html": (NOT_AN_IMAGE, "cannot identify image file")}
SCHEMA = pa.schema([
    ("image_url", pa.string()),
    ("image_sha256", pa.string()),
    ("count", pa.int32()),
    ("points", pa.list_(pa.struct([("x", pa.float32()), ("y", pa.float32())]))),
    ("label", pa.string()),
])


@dataclass
class _Row:
    kind: str  # img / missing / slow / html
    count: int | None
    name: str = ""
    wrong_sha: bool = False
    points: list[dict[str, float]] = field(default_factory=list)


COUNTS = range(2, 11)  # the card's count range, which the builder keeps
GRID = 4  # objects sit in the cells of a GRID x GRID grid, at most one per cell
# A red square of 8/14 of a cell, 3/14 in from its corner, on plain grey: at tiny-llava's 56-px
# input every cell is one 14-px patch, so an object patch looks the same wherever it is and a
# random-initialised model learns to count them (measured: direct SFT 100% on 100 test images
# after 10 epochs; yellow discs, jittered or on a textured background, reached 35-77%).
BACKGROUND, OBJECT = (128, 128, 128), (230, 20, 20)
OBJECT_SIDE, OBJECT_OFFSET = 8 / 14, 3 / 14


def _train_plan(scale: int) -> list[_Row]:
    plan = [_Row("img", c) for _ in range(scale) for c in COUNTS for _ in range(3)]
    plan[7].wrong_sha = True  # a count-4 row
    plan += [_Row("img", c) for c in (0, 1, 11, 14)]
    plan += [_Row("missing", 3), _Row("slow", 5), _Row("html", 7), _Row("img", None)]
    return plan


def _eval_plan(kinds: list[str], counts: list[int], scale: int) -> list[_Row]:
    extra = [_Row("img", c) for _ in range(scale - 1) for c in COUNTS]
    return [_Row(k, c) for k, c in zip(kinds, counts)] + extra


def write(root: Path, seed: int = 0, base_url: str | None = None, scale: int = 1) -> Path:
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    rng = np.random.default_rng(seed)
    top = Path(root) / TOP
    web = Path(root) / WEB
    (top / "data").mkdir(parents=True, exist_ok=True)
    base = (base_url or PLACEHOLDER).rstrip("/")
    plans = {
        "train": _train_plan(scale),
        "validation": _eval_plan(["img", "missing", "img", "img", "html", "img", "img", "img"],
                                 [2, 4, 3, 6, 5, 9, 10, 7], scale),
        "test": _eval_plan(["img", "img", "slow", "img", "img", "img"], [8, 2, 5, 4, 3, 6],
                           scale),
    }
    files: dict[str, bytes] = {}  # URL -> served bytes (live rows)
    urls: dict[str, str] = {}  # URL -> kind
    tables = {}
    serial = 0
    for split, plan in plans.items():
        rows = []
        for r in plan:
            serial += 1
            r.name = f"{serial:04d}.{'png' if serial % 5 == 0 else 'jpg'}"
            url = f"{base}/{r.kind}/{r.name}"
            data = _image(rng, r) if r.kind in ("img", "slow") else b""
            if data:
                (web / r.kind).mkdir(parents=True, exist_ok=True)
                (web / r.kind / r.name).write_bytes(data)
                files[url] = data
            urls[url] = r.kind
            # Dead rows keep the hash of an image nobody can fetch any more.
            sha = hashlib.sha256(b"stale" + data if r.wrong_sha else data or url.encode()).hexdigest()
            rows.append({"image_url": url, "image_sha256": sha, "count": r.count,
                         "points": r.points if split == "train" else [],
                         "label": LABELS[serial % len(LABELS)]})
        tables[split] = rows
    train = tables["train"]
    train.append(dict(train[3]))  # a repeated URL ("URLs can repeat")
    train.append({**train[0], "image_url": tables["validation"][0]["image_url"], "count": 2,
                  "image_sha256": tables["validation"][0]["image_sha256"]})
    for split, rows in tables.items():
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA),
                       top / "data" / f"{split}-00000-of-00001.parquet")
    if base_url is None:
        cache = ImageCache(cache_dir(top))
        for url, kind in urls.items():
            if kind == "img":
                cache.store(url, files[url])
            else:
                cache.store_dead(url, *DEAD[kind])
    return top


def _image(rng: np.random.Generator, r: _Row) -> bytes:
    """A square picture with `count` red squares in distinct grid cells; their centres become
    the row's points."""
    side = GRID * int(rng.integers(24, 41))  # 96..160 px, whole cells
    cell = side / GRID
    img = Image.new("RGB", (side, side), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for c in rng.permutation(GRID * GRID)[: r.count or 0]:
        x0, y0 = (c % GRID + OBJECT_OFFSET) * cell, (c // GRID + OBJECT_OFFSET) * cell
        draw.rectangle((x0, y0, x0 + OBJECT_SIDE * cell, y0 + OBJECT_SIDE * cell), fill=OBJECT)
        centre = OBJECT_OFFSET + OBJECT_SIDE / 2
        r.points.append({"x": round(float((c % GRID + centre) * cell), 2),
                         "y": round(float((c // GRID + centre) * cell), 2)})
    buf = io.BytesIO()
    img.save(buf, format="PNG" if r.name.endswith(".png") else "JPEG", quality=90)
    return buf.getvalue()


@dataclass
class Web:
    base_url: str
    hits: Counter  # URL path -> number of requests

    @property
    def total(self) -> int:
        return sum(self.hits.values())


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops the SYNs of a 16-thread downloader, whose
    # retransmission after 1 s then looks like a dead URL.
    request_queue_size = 128


@contextmanager
def serve(root: Path, slow_s: float = 1.0) -> Iterator[Web]:
    """Serve `root/pixmo-web` on 127.0.0.1 (free port) with the URL-path behaviours above."""
    web_dir = Path(root) / WEB
    hits: Counter = Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with lock:
                hits[self.path] += 1
            kind = self.path.strip("/").split("/")[0]
            try:
                if kind == "html":
                    self._send(200, "text/html; charset=utf-8", HTML)
                    return
                if kind == "slow":
                    time.sleep(slow_s)
                path = web_dir / self.path.lstrip("/")
                if kind not in ("img", "slow") or not path.is_file():
                    self._send(404, "text/plain", b"not found")
                    return
                self._send(200, "image/png" if path.suffix == ".png" else "image/jpeg",
                           path.read_bytes())
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout): nothing to answer

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass  # keep test output quiet

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Web(f"http://127.0.0.1:{server.server_address[1]}", hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
