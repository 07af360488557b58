"""Downloading images by URL for sources that ship links instead of pixels (PixMo-Count).

Owns three things:
- `ImageCache`: a folder keyed by URL (`<cache>/<h[:2]>/<h>` with h = sha256 of the URL) holding
  the raw downloaded bytes, and `<h>.dead.json` markers for URLs that failed. A dead URL is
  remembered like a live one, so a rerun neither retries it forever nor changes which examples
  exist; delete the `*.dead.json` files (or the whole cache) to try the dead ones again.
- `Downloader`: HTTP(S) GET with a socket timeout, an overall deadline, retries with exponential
  backoff for transient failures (timeouts, connection errors, 408/429/5xx), a size cap, and a
  content check (the body must decode as an image: HTML pages, empty bodies and other non-images
  are dead). Downloads run on a bounded thread pool; concurrent requests for one URL share one
  download. Closing it waits for every started download, so an identical rerun is served
  entirely from the cache.
- `Lookahead`: iterates items in their given order while the downloads of the next `depth` items
  already run, so a builder stays sequential and deterministic but the network is concurrent.

Dead reasons (the manifest's rejection buckets): `dead_url` (HTTP error status, unreachable host,
unsupported scheme), `url_timeout`, `not_an_image`, `too_large`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from PIL import Image

from builders.imaging import decode_bytes

DEAD_URL = "dead_url"
URL_TIMEOUT = "url_timeout"
NOT_AN_IMAGE = "not_an_image"
TOO_LARGE = "too_large"

# Statuses worth another try: the server may answer later; every other error status is final.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "livr-toolkit-builder/0.1 (dataset rebuild; one GET per image, cached)"
_CHUNK = 1 << 16
_END: Any = object()

T = TypeVar("T")


@dataclass(frozen=True)
class DownloadConfig:
    timeout_s: float  # socket timeout: connecting and each read
    deadline_s: float  # wall-clock cap of one attempt, so a trickling server cannot hold a worker
    retries: int  # extra attempts after the first, for transient failures only
    backoff_s: float  # sleep before retry k (0-based) is backoff_s * 2**k
    concurrency: int  # worker threads
    max_bytes: int  # larger bodies are dead (`too_large`)

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> DownloadConfig:
        """From a task's `download_*` params in tasks.toml."""
        return cls(
            timeout_s=float(p["download_timeout_s"]), deadline_s=float(p["download_deadline_s"]),
            retries=int(p["download_retries"]), backoff_s=float(p["download_backoff_s"]),
            concurrency=int(p["download_concurrency"]), max_bytes=int(p["download_max_bytes"]),
        )


@dataclass(frozen=True)
class Fetched:
    """The outcome for one URL: `path` to the cached bytes when alive, else the dead `reason`."""

    url: str
    path: Path | None
    reason: str | None = None
    detail: str = ""
    from_cache: bool = False

    @property
    def ok(self) -> bool:
        return self.path is not None


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


class ImageCache:
    """Downloaded bodies and dead-URL markers, keyed by the URL. Writes are atomic (temporary
    file + rename), so a killed build never leaves a half-written entry."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def body_path(self, url: str) -> Path:
        h = url_key(url)
        return self.folder / h[:2] / h

    def dead_path(self, url: str) -> Path:
        h = url_key(url)
        return self.folder / h[:2] / f"{h}.dead.json"

    def lookup(self, url: str) -> Fetched | None:
        body = self.body_path(url)
        if body.is_file():
            return Fetched(url, body, from_cache=True)
        dead = self.dead_path(url)
        if dead.is_file():
            info = json.loads(dead.read_text(encoding="utf-8"))
            return Fetched(url, None, info["reason"], info.get("detail", ""), from_cache=True)
        return None

    def store(self, url: str, data: bytes) -> Fetched:
        path = self.body_path(url)
        self._write(path, data)
        return Fetched(url, path)

    def store_dead(self, url: str, reason: str, detail: str = "") -> Fetched:
        doc = {"url": url, "reason": reason, "detail": detail}
        self._write(self.dead_path(url), json.dumps(doc, sort_keys=True).encode("utf-8"))
        return Fetched(url, None, reason, detail)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


class _Failure(Exception):
    def __init__(self, reason: str, detail: str, retriable: bool) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.retriable = reason, detail, retriable


def check_image(data: bytes) -> None:
    """Raise `_Failure` unless `data` fully decodes as an image."""
    if not data:
        raise _Failure(NOT_AN_IMAGE, "empty body", retriable=False)
    try:
        decode_bytes(data)
    except Image.DecompressionBombError as exc:
        raise _Failure(TOO_LARGE, str(exc), retriable=False) from exc
    except Exception as exc:  # PIL raises many types for junk: all mean "not an image"
        raise _Failure(NOT_AN_IMAGE, f"{type(exc).__name__}: {exc}"[:200], retriable=False) from exc


class Downloader:
    """Fetch URLs into an `ImageCache` on a thread pool; `close()` waits for started downloads."""

    def __init__(self, cache: ImageCache, config: DownloadConfig) -> None:
        self.cache = cache
        self.config = config
        self._pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="download")
        self._lock = threading.Lock()
        self._futures: dict[str, Future[Fetched]] = {}
        self.network_requests = 0  # HTTP attempts made (cache hits make none)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def submit(self, url: str) -> Future[Fetched]:
        """Start (or join) the download of `url`."""
        with self._lock:
            fut = self._futures.get(url)
            if fut is None:
                fut = self._futures[url] = self._pool.submit(self.fetch, url)
            return fut

    def fetch(self, url: str) -> Fetched:
        """The cached outcome, or download now (with retries) and cache the outcome."""
        hit = self.cache.lookup(url)
        if hit is not None:
            return hit
        cfg = self.config
        attempt = 0
        while True:
            try:
                data = self._get(url)
                check_image(data)
                return self.cache.store(url, data)
            except _Failure as fail:
                if not fail.retriable or attempt >= cfg.retries:
                    return self.cache.store_dead(url, fail.reason, fail.detail)
                time.sleep(cfg.backoff_s * 2**attempt)
                attempt += 1

    def _get(self, url: str) -> bytes:
        cfg = self.config
        if not url.lower().startswith(("http://", "https://")):
            raise _Failure(DEAD_URL, "unsupported URL scheme", retriable=False)
        with self._lock:
            self.network_requests += 1
        started = time.monotonic()
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(req, timeout=cfg.timeout_s) as resp:
                length = resp.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > cfg.max_bytes:
                    raise _Failure(TOO_LARGE, f"Content-Length {length}", retriable=False)
                chunks, size = [], 0
                while chunk := resp.read(_CHUNK):
                    size += len(chunk)
                    if size > cfg.max_bytes:
                        raise _Failure(TOO_LARGE, f"more than {cfg.max_bytes} bytes", retriable=False)
                    if time.monotonic() - started > cfg.deadline_s:
                        raise _Failure(URL_TIMEOUT, f"slower than {cfg.deadline_s}s", retriable=True)
                    chunks.append(chunk)
                return b"".join(chunks)
        except urllib.error.HTTPError as exc:
            raise _Failure(DEAD_URL, f"HTTP {exc.code}", retriable=exc.code in RETRY_STATUSES) from exc
        except urllib.error.URLError as exc:
            timed_out = isinstance(exc.reason, TimeoutError)
            reason = URL_TIMEOUT if timed_out else DEAD_URL
            raise _Failure(reason, str(exc.reason)[:200], retriable=True) from exc
        except TimeoutError as exc:
            raise _Failure(URL_TIMEOUT, f"no data for {cfg.timeout_s}s", retriable=True) from exc
        except (http.client.HTTPException, OSError) as exc:
            raise _Failure(DEAD_URL, f"{type(exc).__name__}: {exc}"[:200], retriable=True) from exc


class Lookahead(Generic[T]):
    """Yield `(item, Fetched)` for `items` in order, keeping the next `depth` downloads running."""

    def __init__(self, items: Iterable[T], url: Callable[[T], str], downloader: Downloader,
                 depth: int) -> None:
        self._items: Iterator[T] = iter(items)
        self._url = url
        self._downloader = downloader
        self._queue: deque[tuple[T, Future[Fetched]]] = deque()
        for _ in range(max(1, depth)):
            self._push()

    def _push(self) -> None:
        item = next(self._items, _END)
        if item is not _END:
            self._queue.append((item, self._downloader.submit(self._url(item))))

    def __iter__(self) -> Lookahead[T]:
        return self

    def __next__(self) -> tuple[T, Fetched]:
        if not self._queue:
            raise StopIteration
        item, fut = self._queue.popleft()
        self._push()
        return item, fut.result()
