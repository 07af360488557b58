"""The URL downloader against a local HTTP server on 127.0.0.1: dead-URL classification, retries,
timeouts, the size cap, the content check, bounded concurrency and the URL-keyed cache."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from builders.download import (
    DEAD_URL,
    NOT_AN_IMAGE,
    TOO_LARGE,
    URL_TIMEOUT,
    DownloadConfig,
    Downloader,
    ImageCache,
    Lookahead,
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


@pytest.fixture()
def server():
    """Routes by path; `state.hits` counts requests per path, `state.peak` the most concurrent."""
    state = type("State", (), {})()
    state.hits, state.active, state.peak = Counter(), 0, 0
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
                self.send_response(302)
                self.send_header("Location", "/ok.png")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._send(404, b"gone")

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


def _config(timeout_s: float = 0.5, concurrency: int = 3) -> DownloadConfig:
    return DownloadConfig(timeout_s=timeout_s, deadline_s=5.0, retries=1, backoff_s=0.01,
                          concurrency=concurrency, max_bytes=4000)


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


def test_a_timeout_is_retried_then_remembered_as_dead(server, tmp_path):
    cache = ImageCache(tmp_path)
    dl = Downloader(cache, _config())
    try:
        got = dl.fetch(server.base + "/slow.png")
    finally:
        dl.close()
    assert got.reason == URL_TIMEOUT and dl.network_requests == 2  # first try + one retry
    again = Downloader(cache, _config())
    try:
        assert again.fetch(server.base + "/slow.png").reason == URL_TIMEOUT
    finally:
        again.close()
    assert again.network_requests == 0


def test_only_http_urls_are_fetched(tmp_path):
    dl = Downloader(ImageCache(tmp_path), _config())
    try:
        got = dl.fetch("file:///etc/hostname")
    finally:
        dl.close()
    assert got.reason == DEAD_URL and dl.network_requests == 0


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
