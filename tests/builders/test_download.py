"""The URL downloader against a local HTTP server on 127.0.0.1: dead-URL classification, retries,
timeouts, the size cap, the content check, bounded concurrency and the URL-keyed cache; and the
faults a real crawl meets: a server trickling bytes (a wall-clock deadline holds), non-ASCII and
malformed URLs, bad IPv6 literals, TLS errors, redirects to ftp:// and file://, redirect loops,
a 503 that recovers by the next run (never cached as dead), a decompression-bomb PNG. None of
them raises out of `fetch`; each is a reason, logged with its URL."""

from __future__ import annotations

import io
import logging
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from builders.download import (
    BAD_URL,
    DEAD_URL,
    NOT_AN_IMAGE,
    TOO_LARGE,
    URL_TIMEOUT,
    DownloadConfig,
    Downloader,
    ImageCache,
    Lookahead,
    request_url,
)

SLOW_S = 1.5


def _png(size: int = 24, colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="PNG")
    return buf.getvalue()


IMAGE = _png()
_noise = np.random.default_rng(0).integers(0, 256, size=(48, 48, 3), dtype=np.uint8)
_buf = io.BytesIO()
Image.fromarray(_noise).save(_buf, format="PNG")
BIG = _buf.getvalue()  # a valid image over the 4000-byte cap the tests use


def png_declaring(width: int, height: int) -> bytes:
    """A ~70-byte PNG whose header declares `width` x `height` RGB pixels: a decompression
    bomb (what a decoder would allocate is in the header, not in the file's size)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


BOMB = png_declaring(10_000, 10_000)  # 100 MP: over the cap, under PIL's own error threshold
TRICKLE_BYTES = 60  # sent one every 0.1 s: the whole body would take 6 s


@pytest.fixture()
def server():
    """Routes by path; `state.hits` counts requests per path, `state.peak` the most concurrent."""
    state = type("State", (), {})()
    state.hits, state.active, state.peak, state.up = Counter(), 0, 0, False
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with lock:
                state.hits[self.path] += 1
                n = state.hits[self.path]
                state.active += 1
                state.peak = max(state.peak, state.active)
            try:
                self._route(n)
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with lock:
                    state.active -= 1

        def _route(self, n: int) -> None:
            p = self.path
            if p == "/ok.png" or p.startswith("/conc/"):
                if p.startswith("/conc/"):
                    time.sleep(0.1)
                self._send(200, IMAGE)
            elif p == "/flaky.png":
                self._send(503, b"busy") if n == 1 else self._send(200, IMAGE)
            elif p == "/slow.png":
                time.sleep(SLOW_S)
                self._send(200, IMAGE)
            elif p == "/html":
                self._send(200, b"<html><body>moved</body></html>", "text/html")
            elif p == "/empty":
                self._send(200, b"")
            elif p == "/big.png":
                self._send(200, BIG)
            elif p == "/big-unsized.png":  # no Content-Length: the cap must hold while streaming
                self.send_response(200)
                self.end_headers()
                self.wfile.write(BIG)
            elif p == "/redirect":
                self._redirect("/ok.png")
            elif p == "/to-ftp":
                self._redirect("ftp://127.0.0.1/ok.png")
            elif p == "/to-file":
                self._redirect("file:///etc/hostname")
            elif p in ("/loop-a", "/loop-b"):
                self._redirect("/loop-b" if p == "/loop-a" else "/loop-a")
            elif p.startswith("/chain/"):
                self._redirect(f"/chain/{int(p.rsplit('/', 1)[1]) + 1}")
            elif p == "/caf%C3%A9%20cr%C3%A8me.png":  # what a browser sends for the UTF-8 path
                self._send(200, IMAGE)
            elif p == "/recovers.png":  # down for the whole first run, up on the next
                self._send(200, IMAGE) if state.up else self._send(503, b"busy")
            elif p == "/bomb.png":
                self._send(200, BOMB)
            elif p == "/trickle-body.png":  # headers at once, then one byte per 0.1 s
                self.send_response(200)
                self.send_header("Content-Length", str(TRICKLE_BYTES))
                self.end_headers()
                self._trickle(b"x" * TRICKLE_BYTES)
            elif p == "/trickle-head.png":  # even the status line arrives byte by byte
                self._trickle(b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * TRICKLE_BYTES)
            else:
                self._send(404, b"gone")

        def _trickle(self, data: bytes) -> None:
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(0.1)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _send(self, status: int, body: bytes, ctype: str = "image/png") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _config(timeout_s: float = 0.5, concurrency: int = 3, deadline_s: float = 5.0,
            retries: int = 1) -> DownloadConfig:
    return DownloadConfig(timeout_s=timeout_s, deadline_s=deadline_s, retries=retries,
                          backoff_s=0.01, concurrency=concurrency, max_bytes=4000)


def _fetch(cache: ImageCache, url: str, **config):
    dl = Downloader(cache, _config(**config))
    try:
        return dl.fetch(url), dl.network_requests
    finally:
        dl.close()


def test_outcomes_are_classified_and_cached(server, tmp_path):
    expect = {
        "/ok.png": None, "/redirect": None, "/flaky.png": None, "/404": DEAD_URL,
        "/html": NOT_AN_IMAGE, "/empty": NOT_AN_IMAGE,
        "/big.png": TOO_LARGE, "/big-unsized.png": TOO_LARGE,
    }
    assert len(IMAGE) < 4000 < len(BIG)
    cache = ImageCache(tmp_path / "cache")
    dl = Downloader(cache, _config())
    try:
        got = {p: dl.fetch(server.base + p) for p in expect}
    finally:
        dl.close()
    assert {p: g.reason for p, g in got.items()} == expect
    for p in ("/ok.png", "/redirect", "/flaky.png"):
        assert got[p].ok and got[p].path.read_bytes() == IMAGE
    # a transient failure is retried (once here), final ones are not
    assert server.hits["/flaky.png"] == 2
    assert server.hits["/404"] == server.hits["/html"] == server.hits["/big.png"] == 1

    # a second downloader on the same cache makes no request and gives the same outcomes
    before = Counter(server.hits)
    again = Downloader(cache, _config())
    try:
        second = {p: again.fetch(server.base + p) for p in expect}
    finally:
        again.close()
    assert server.hits == before and again.network_requests == 0
    assert {p: g.reason for p, g in second.items()} == expect
    assert all(g.from_cache for g in second.values())


def test_a_timeout_is_retried_and_not_cached_as_dead(server, tmp_path):
    cache = ImageCache(tmp_path)
    got, requests = _fetch(cache, server.base + "/slow.png")
    assert got.reason == URL_TIMEOUT and got.transient and requests == 2  # try + one retry
    # the next run tries again (the server may be back): a timeout is not a dead URL
    again, requests = _fetch(cache, server.base + "/slow.png")
    assert again.reason == URL_TIMEOUT and not again.from_cache and requests == 2


def test_a_503_then_200_across_two_runs_is_retried_not_cached(server, tmp_path, caplog):
    cache = ImageCache(tmp_path)
    url = server.base + "/recovers.png"
    with caplog.at_level(logging.WARNING, logger="builders.download"):
        got, _ = _fetch(cache, url, retries=0)
    assert (got.reason, got.detail, got.transient) == (DEAD_URL, "HTTP 503", True)
    assert f"skipped {url}: dead_url (HTTP 503); not cached" in caplog.text
    assert not any(cache.folder.rglob("*.dead.json"))
    server.up = True
    got, requests = _fetch(cache, url, retries=0)
    assert got.ok and got.path.read_bytes() == IMAGE and requests == 1


def test_connection_refused_is_transient(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got, requests = _fetch(ImageCache(tmp_path), f"http://127.0.0.1:{port}/a.png", retries=0)
    assert got.reason == DEAD_URL and got.transient and "Connection refused" in got.detail
    assert requests == 1 and not any(tmp_path.rglob("*.dead.json"))


def test_only_definitive_failures_are_cached(server, tmp_path):
    cache = ImageCache(tmp_path)
    for path, reason in (("/404", DEAD_URL), ("/html", NOT_AN_IMAGE), ("/big.png", TOO_LARGE)):
        got, _ = _fetch(cache, server.base + path)
        assert got.reason == reason and not got.transient
        assert cache.dead_path(server.base + path).is_file()
    # a marker without the definitive flag (older versions cached timeouts) is not trusted
    legacy = server.base + "/ok.png"
    cache.dead_path(legacy).parent.mkdir(parents=True, exist_ok=True)
    cache.dead_path(legacy).write_text(f'{{"url": "{legacy}", "reason": "url_timeout"}}')
    got, requests = _fetch(cache, legacy)
    assert got.ok and requests == 1
    cache.dead_path(server.base + "/html").write_bytes(b"\x80garbage")  # a damaged marker
    got, requests = _fetch(cache, server.base + "/html")
    assert got.reason == NOT_AN_IMAGE and requests == 1


@pytest.mark.parametrize("path", ["/trickle-body.png", "/trickle-head.png"])
def test_a_trickling_server_cannot_outlast_the_deadline(server, tmp_path, path):
    # Every byte comes well within the 0.5 s socket timeout; only the deadline can stop it.
    started = time.monotonic()
    got, _ = _fetch(ImageCache(tmp_path), server.base + path, deadline_s=1.0, retries=2)
    elapsed = time.monotonic() - started
    assert got.reason == URL_TIMEOUT and got.transient
    assert "deadline" in got.detail
    assert elapsed < 2.0, f"the 1 s deadline held the worker for {elapsed:.1f} s"


def test_a_non_ascii_url_is_sent_percent_encoded(server, tmp_path):
    got, _ = _fetch(ImageCache(tmp_path), server.base + "/café crème.png")
    assert got.ok and got.path.read_bytes() == IMAGE
    assert request_url("http://bücher.example/ä?q=ü") == \
        "http://xn--bcher-kva.example/%C3%A4?q=%C3%BC"


@pytest.mark.parametrize("url", [
    "http://[::1/a.png",  # unclosed IPv6 literal
    "http://[zzz]/a.png",  # not an address
    "http://[::1]:99999/a.png",  # port out of range
    "http://127.0.0.1:port/a.png",
    "http://exa mple.com/a.png",
    "http://a..b/a.png",  # an empty IDNA label
    "http:///a.png",
    "ftp://127.0.0.1/a.png",
    "file:///etc/hostname",
    "javascript:alert(1)",
])
def test_a_malformed_url_is_a_counted_skip_without_a_request(tmp_path, url, caplog):
    with caplog.at_level(logging.WARNING, logger="builders.download"):
        got, requests = _fetch(ImageCache(tmp_path), url)
    assert got.reason == BAD_URL and requests == 0 and not got.ok
    assert f"skipped {url}: bad_url" in caplog.text
    assert not any(tmp_path.rglob("*.dead.json"))


@pytest.mark.parametrize("path,reason,detail", [
    ("/to-ftp", BAD_URL, "unsupported URL scheme 'ftp'"),
    ("/to-file", BAD_URL, "unsupported URL scheme 'file'"),
    ("/loop-a", DEAD_URL, "redirect loop"),
    ("/chain/0", DEAD_URL, "more than 10 redirects"),
])
def test_redirects_are_checked_like_the_first_url(server, tmp_path, path, reason, detail):
    got, requests = _fetch(ImageCache(tmp_path), server.base + path)
    assert (got.reason, got.transient) == (reason, True) and detail in got.detail
    assert requests == 1  # refused where it happened, not retried within the run
    assert server.hits["/ok.png"] == 0  # the ftp:// target was not fetched some other way


def test_a_tls_error_is_a_counted_skip(server, tmp_path):
    # https:// to a server that speaks plain HTTP: the handshake fails
    got, _ = _fetch(ImageCache(tmp_path), server.base.replace("http:", "https:") + "/ok.png",
                    retries=0)
    assert got.reason == DEAD_URL and got.detail.startswith("TLS error") and got.transient


def test_a_decompression_bomb_is_too_large_and_costs_no_decode(server, tmp_path):
    assert len(BOMB) < 200
    started = time.monotonic()
    with pytest.warns(Image.DecompressionBombWarning):  # PIL only warns at this size
        got, _ = _fetch(ImageCache(tmp_path), server.base + "/bomb.png")
    assert got.reason == TOO_LARGE and "10000x10000" in got.detail
    assert "max_image_pixels" in got.detail and not got.transient  # cached as dead
    assert time.monotonic() - started < 2.0  # nothing was decoded


def test_fetch_never_raises(server, tmp_path, monkeypatch):
    dl = Downloader(ImageCache(tmp_path), _config())

    def broken(data, url):
        raise MemoryError("simulated")

    monkeypatch.setattr("builders.download.check_image", broken)
    try:
        got = dl.fetch(server.base + "/ok.png")
    finally:
        dl.close()
    assert got.reason == DEAD_URL and "MemoryError" in got.detail and got.transient


def test_concurrency_is_bounded_and_lookahead_keeps_order(server, tmp_path):
    paths = [f"/conc/{i}" for i in range(9)]
    items = ["/slow.png", *paths, "/404"]
    dl = Downloader(ImageCache(tmp_path), _config(timeout_s=3.0, concurrency=3))
    try:
        out = list(Lookahead(items, lambda p: server.base + p, dl, depth=6))
    finally:
        dl.close()
    assert [item for item, _ in out] == items  # input order, whatever finished first
    assert [g.ok for _, g in out] == [True] * 10 + [False]
    assert 1 < server.peak <= 3


def test_one_download_per_url_even_when_submitted_twice(server, tmp_path):
    dl = Downloader(ImageCache(tmp_path), _config())
    try:
        futures = [dl.submit(server.base + "/conc/x") for _ in range(4)]
        assert all(f.result().ok for f in futures)
    finally:
        dl.close()
    assert server.hits["/conc/x"] == 1
