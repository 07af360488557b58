"""Downloading images by URL for sources that ship links instead of pixels (PixMo-Count).

Owns four things:
- `request_url`: the URL as sent. Only http and https; the host IDNA-encoded, non-ASCII and
  spaces in the path and query percent-encoded as UTF-8 (what browsers and `requests` send);
  anything that cannot be made a valid request (malformed, bad IPv6 literal, bad port,
  unsupported scheme) is `bad_url` without any request.
- `ImageCache`: a folder keyed by URL (`<cache>/<h[:2]>/<h>` with h = sha256 of the URL) holding
  the raw downloaded bytes, and `<h>.dead.json` markers for URLs that failed DEFINITIVELY (HTTP
  404/410, not an image, too large): a rerun neither requests them again nor changes which
  examples exist. Transient failures (timeouts, connection errors, TLS errors, 5xx, 408/429,
  redirect loops, other statuses) are never cached: the next run tries them again, and may then
  keep more examples. Delete `*.dead.json` (or the cache) to retry the definitive ones too.
- `Downloader`: HTTP(S) GET through `urllib` with only the http/https handlers installed (a
  redirect to ftp://, file:// or anything else is refused: every redirect target passes
  `request_url` like the first URL), at most `MAX_REDIRECTS` hops and no loop; a socket timeout
  per connect/read and a wall-clock deadline per URL (all attempts and backoffs included) that a
  watchdog enforces by shutting the socket down, so a server trickling bytes (in the headers or
  the body) cannot hold a worker past it; retries with exponential backoff for transient
  failures while the deadline allows; a size cap; a content check (the body must decode as an
  image within the pixel cap of `builders.imaging`). Any per-URL failure, whatever raised it, is
  a `Fetched` with a reason, logged with its URL, never an exception out of the build. Downloads
  run on a bounded thread pool; concurrent requests for one URL share one download; `close()`
  waits for every started download. Name resolution (DNS) is the one step a watchdog cannot
  interrupt: it is bounded by the system resolver's own timeouts.
- `Lookahead`: iterates items in their given order while the downloads of the next `depth` items
  already run, so a builder stays sequential and deterministic but the network is concurrent.

Dead reasons (the manifest's rejection buckets): `dead_url` (HTTP error status, unreachable host,
TLS error, redirect loop), `bad_url` (no valid request: malformed URL, unsupported scheme, a
redirect to one), `url_timeout`, `not_an_image`, `too_large` (bytes over `max_bytes`, or pixels
over the pixel cap).
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import logging
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Self, TypeVar
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from builders.atomic import atomic_write_bytes
from builders.imaging import TOO_LARGE as IMAGE_TOO_LARGE
from builders.imaging import UnreadableImage, decode_bytes

log = logging.getLogger(__name__)

DEAD_URL = "dead_url"
BAD_URL = "bad_url"
URL_TIMEOUT = "url_timeout"
NOT_AN_IMAGE = "not_an_image"
TOO_LARGE = "too_large"

# Statuses worth another try within a run: the server may answer later.
RETRY_STATUSES = frozenset({408, 425, 429})  # and every 5xx
# The only statuses that say the image is gone for good, so they are cached as dead.
GONE_STATUSES = frozenset({404, 410})
MAX_REDIRECTS = 10  # as urllib's own limit; real image hosts use one or two
USER_AGENT = "livr-toolkit-builder/0.1 (dataset rebuild; one GET per image, cached)"
# Characters left as they are when percent-encoding a path or query: RFC 3986's reserved and
# unreserved ones and "%" (an existing escape), as `requests.utils.requote_uri`.
_URL_SAFE = "!$%&'()*+,/:;=?@[]~"
_HOST_RE = re.compile(r"[A-Za-z0-9._-]+")
_CHUNK = 1 << 16
_END: Any = object()

T = TypeVar("T")


@dataclass(frozen=True)
class DownloadConfig:
    timeout_s: float  # socket timeout: connecting and each read
    deadline_s: float  # wall-clock cap per URL, all attempts and backoffs included
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
    """The outcome for one URL: `path` to the cached bytes when alive, else the dead `reason`;
    `transient` failures are not cached (the next run tries again)."""

    url: str
    path: Path | None
    reason: str | None = None
    detail: str = ""
    from_cache: bool = False
    transient: bool = False

    @property
    def ok(self) -> bool:
        return self.path is not None


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


class _Failure(Exception):
    """A failed attempt: `retry` says whether another attempt in this run may help,
    `definitive` whether the outcome is cached as dead."""

    def __init__(self, reason: str, detail: str, *, retry: bool = False,
                 definitive: bool = False) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail
        self.retry, self.definitive = retry, definitive


def request_url(url: str) -> str:
    """`url` as it is sent (see the module docstring); raises `_Failure` (`bad_url`) when it
    cannot be a valid http(s) request."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise _Failure(BAD_URL, f"unsupported URL scheme {scheme or '(none)'!r}")
        host, port = parts.hostname, parts.port  # ValueError: bad IPv6 literal or port
        if not host:
            raise _Failure(BAD_URL, "no host")
        if ":" in host:
            ipaddress.IPv6Address(host)
            host = f"[{host}]"
        else:
            host = host.encode("idna").decode("ascii")
            if not _HOST_RE.fullmatch(host):
                raise _Failure(BAD_URL, f"invalid host name {host!r}")
        netloc = host if port is None else f"{host}:{port}"
        path = quote(parts.path or "/", safe=_URL_SAFE)
        return urlunsplit((scheme, netloc, path, quote(parts.query, safe=_URL_SAFE), ""))
    except (ValueError, UnicodeError) as exc:
        raise _Failure(BAD_URL, f"malformed URL ({type(exc).__name__}: {exc})"[:200]) from exc


class ImageCache:
    """Downloaded bodies and definitive dead-URL markers, keyed by the URL. Writes are atomic
    (`builders.atomic`), so a killed build never leaves a half-written entry."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def body_path(self, url: str) -> Path:
        h = url_key(url)
        return self.folder / h[:2] / h

    def dead_path(self, url: str) -> Path:
        h = url_key(url)
        return self.folder / h[:2] / f"{h}.dead.json"

    def lookup(self, url: str) -> Fetched | None:
        """The cached outcome, or None when the URL must be fetched (never seen, or only a
        marker that is unreadable or not definitive, as written by older versions)."""
        body = self.body_path(url)
        if body.is_file():
            return Fetched(url, body, from_cache=True)
        dead = self.dead_path(url)
        if not dead.is_file():
            return None
        try:
            info = json.loads(dead.read_text(encoding="utf-8"))
            if info.get("definitive") is True and info.get("url") == url:
                return Fetched(url, None, str(info["reason"]), str(info.get("detail", "")),
                               from_cache=True)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, AttributeError):
            log.warning("ignoring the unreadable cache entry %s (for %s); fetching again",
                        dead, url)
        return None

    def store(self, url: str, data: bytes) -> Fetched:
        path = self.body_path(url)
        self._write(path, data)
        return Fetched(url, path)

    def store_dead(self, url: str, reason: str, detail: str = "") -> Fetched:
        doc = {"url": url, "reason": reason, "detail": detail, "definitive": True}
        self._write(self.dead_path(url), json.dumps(doc, sort_keys=True).encode("utf-8"))
        return Fetched(url, None, reason, detail)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)


def check_image(data: bytes, url: str = "<body>") -> None:
    """Raise `_Failure` (definitive) unless `data` fully decodes as an image within the cap."""
    if not data:
        raise _Failure(NOT_AN_IMAGE, "empty body", definitive=True)
    try:
        decode_bytes(data, url)
    except UnreadableImage as exc:
        reason = TOO_LARGE if exc.reason == IMAGE_TOO_LARGE else NOT_AN_IMAGE
        raise _Failure(reason, str(exc).removeprefix(f"{url}: ")[:300], definitive=True) from exc


class _Watchdog:
    """Shuts down every socket of one URL's request when its deadline passes, so no read (of
    the status line, the headers or the body) can outlast it however slowly bytes arrive."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Self:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def create_connection(self, address: Any, timeout: Any = None, source_address: Any = None,
                          **kwargs: Any) -> socket.socket:
        sock = socket.create_connection(address, timeout, source_address, **kwargs)
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired
        if fired:
            _shutdown(sock)
        return sock

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


def _watched(base: type[http.client.HTTPConnection], dog: _Watchdog) -> Callable[..., Any]:
    """A connection class whose sockets `dog` watches and whose connect timeout fits in it."""

    class Watched(base):  # type: ignore[valid-type, misc]
        def connect(self) -> None:
            given = self.timeout if isinstance(self.timeout, (int, float)) else dog.remaining()
            self.timeout = max(0.01, min(given, dog.remaining()))
            self._create_connection = dog.create_connection
            super().connect()

    return Watched


class _HTTP(urllib.request.HTTPHandler):
    def __init__(self, dog: _Watchdog) -> None:
        super().__init__()
        self.dog = dog

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(http.client.HTTPConnection, self.dog), req)


class _HTTPS(urllib.request.HTTPSHandler):
    def __init__(self, dog: _Watchdog, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self.dog = dog

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(http.client.HTTPSConnection, self.dog), req,
                            context=self._context)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a target that passes `request_url` (http/https, well formed),
    at most MAX_REDIRECTS hops, never back to a URL of the chain."""

    def http_error_302(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                       headers: Any) -> Any:
        location = headers.get("location")
        if location is None:
            return None  # the error handler turns the 3xx into a failure
        chain = getattr(req, "livr_chain", [req.full_url])
        # http.client decodes headers as Latin-1; a server's raw UTF-8 is recovered here.
        try:
            location = location.encode("latin-1").decode("utf-8")
        except UnicodeError:
            pass
        try:
            target = request_url(urljoin(req.full_url, location))
        except _Failure as fail:
            raise _Failure(BAD_URL, f"redirect to {location!r} refused: {fail.detail}") from None
        if target in chain:
            raise _Failure(DEAD_URL, "redirect loop: " + " -> ".join([*chain, target]))
        if len(chain) > MAX_REDIRECTS:
            raise _Failure(DEAD_URL, f"more than {MAX_REDIRECTS} redirects")
        fp.read()
        fp.close()
        new = self.redirect_request(req, fp, code, msg, headers, target)
        if new is None:
            return None
        new.livr_chain = [*chain, target]
        return self.parent.open(new, timeout=req.timeout)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


class Downloader:
    """Fetch URLs into an `ImageCache` on a thread pool; `close()` waits for started downloads."""

    def __init__(self, cache: ImageCache, config: DownloadConfig) -> None:
        self.cache = cache
        self.config = config
        self._pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="download")
        self._lock = threading.Lock()
        self._futures: dict[str, Future[Fetched]] = {}
        self._tls = ssl.create_default_context()
        self.network_requests = 0  # HTTP attempts made (cache hits make none)
        self.transient_failures = 0  # URLs that failed without being cached as dead

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
        """The cached outcome, or download now (with retries) and cache a definitive outcome.
        Never raises: a failure of any kind is a `Fetched` with a reason, logged with the URL."""
        try:
            got = self.cache.lookup(url) or self._download(url)
        except Exception as exc:  # noqa: BLE001 - one URL must never stop the build
            got = Fetched(url, None, DEAD_URL, f"{type(exc).__name__}: {exc}"[:200],
                          transient=True)
        if got.transient:
            with self._lock:
                self.transient_failures += 1
        if not got.ok:
            when = (" (cached)" if got.from_cache
                    else "; not cached, the next build tries again" if got.transient else "")
            log.warning("skipped %s: %s (%s)%s", url, got.reason, got.detail, when)
        return got

    def _download(self, url: str) -> Fetched:
        cfg = self.config
        deadline = time.monotonic() + cfg.deadline_s
        attempt = 0
        while True:
            try:
                data = self._get(url, deadline)
                check_image(data, url)
                return self.cache.store(url, data)
            except _Failure as fail:
                wait = cfg.backoff_s * 2**attempt
                if fail.retry and attempt < cfg.retries and time.monotonic() + wait < deadline:
                    time.sleep(wait)
                    attempt += 1
                    continue
                if fail.definitive:
                    return self.cache.store_dead(url, fail.reason, fail.detail)
                return Fetched(url, None, fail.reason, fail.detail, transient=True)

    def _get(self, url: str, deadline: float) -> bytes:
        cfg = self.config
        sent = request_url(url)
        if time.monotonic() >= deadline:
            raise _Failure(URL_TIMEOUT, f"over the {cfg.deadline_s:g}s deadline", retry=False)
        with self._lock:
            self.network_requests += 1
        with _Watchdog(deadline) as dog:
            opener = urllib.request.OpenerDirector()
            for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(),
                            _HTTP(dog), _HTTPS(dog, self._tls), _Redirects(),
                            urllib.request.HTTPDefaultErrorHandler(),
                            urllib.request.HTTPErrorProcessor()):
                opener.add_handler(handler)
            req = urllib.request.Request(sent, headers={"User-Agent": USER_AGENT})
            try:
                return self._read(opener, req, dog)
            except _Failure:
                raise
            except Exception as exc:  # classified: never raised out of a build
                raise _classify(exc, dog, cfg) from exc

    def _read(self, opener: urllib.request.OpenerDirector, req: urllib.request.Request,
              dog: _Watchdog) -> bytes:
        cfg = self.config
        with opener.open(req, timeout=cfg.timeout_s) as resp:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > cfg.max_bytes:
                raise _Failure(TOO_LARGE, f"Content-Length {length}", definitive=True)
            chunks, size = [], 0
            while chunk := resp.read1(_CHUNK):
                size += len(chunk)
                if size > cfg.max_bytes:
                    raise _Failure(TOO_LARGE, f"more than {cfg.max_bytes} bytes", definitive=True)
                if dog.fired or dog.remaining() <= 0:
                    break
                chunks.append(chunk)
        if dog.fired or dog.remaining() <= 0:  # a shut-down socket ends the body early
            raise _Failure(URL_TIMEOUT, f"not complete within the {cfg.deadline_s:g}s deadline",
                           retry=True)
        if length and length.isdigit() and size != int(length):
            raise _Failure(DEAD_URL, f"connection closed after {size} of {length} bytes",
                           retry=True)
        return b"".join(chunks)


def _classify(exc: Exception, dog: _Watchdog, cfg: DownloadConfig) -> _Failure:
    """The failure an exception of one attempt means (see the module docstring)."""
    if dog.fired:
        return _Failure(URL_TIMEOUT, f"not complete within the {cfg.deadline_s:g}s deadline",
                        retry=True)
    if isinstance(exc, urllib.error.HTTPError):
        code = exc.code
        if code in GONE_STATUSES:
            return _Failure(DEAD_URL, f"HTTP {code}", definitive=True)
        return _Failure(DEAD_URL, f"HTTP {code}", retry=code >= 500 or code in RETRY_STATUSES)
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    text = f"{type(reason).__name__}: {reason}"[:200]
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return _Failure(URL_TIMEOUT, f"no data for {cfg.timeout_s:g}s", retry=True)
    if isinstance(reason, ssl.SSLError):
        return _Failure(DEAD_URL, f"TLS error ({text})")
    if isinstance(reason, str) and reason.startswith("unknown url type"):
        return _Failure(BAD_URL, reason)
    if isinstance(reason, (http.client.InvalidURL, ValueError, UnicodeError)):
        return _Failure(BAD_URL, f"malformed URL ({text})")
    if isinstance(reason, (OSError, http.client.HTTPException)):
        return _Failure(DEAD_URL, text, retry=True)  # refused, reset, unreachable, cut short
    return _Failure(DEAD_URL, text)


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
