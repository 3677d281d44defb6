"""Image hosts on loopback for tests and benchmarks.

``ImageHost`` is a threaded HTTP server on a 127.0.0.x address that serves generated,
distinct, valid images and every kind of bad response, with an optional latency per
response, and counts the requests it receives per path.

Paths:
  /img/<seed>.<fmt>?w=W&h=H[&noise=1]   a distinct image (jpeg, png, webp, gif)
  /same/<seed>.<fmt>?w=W&h=H&q=Q         the same picture as /img/<seed> re-encoded/resized
  /anim/<seed>.<fmt>?w=W&h=H&frames=N    an animated gif, png or webp of N frames (default 3)
  /html.jpg, /svg.png                   markup served as an image
  /truncated.jpg                        a JPEG cut in half
  /bomb.png                             a small PNG that declares 40000x40000 pixels
  /garbage.jpg                          random bytes
  /endless.jpg                          bytes that never stop
  /trickle.jpg                          one byte a second
  /loop.jpg                             redirects to itself
  /to-private.jpg                       redirects to http://10.0.0.1/x.jpg
  /redirect/<n>/<target path>           n redirects, then the target
  /status/<code>                        that status (with Retry-After: 1 for 429/503)
  /flaky/<code>/<k>/<rest>              the code for the first k requests, then <rest>
  /file/<name>                          a file from the host's ``files`` folder (benchmark corpora)
  /xrobots/<value>/<rest>               <rest>, sent with ``X-Robots-Tag: <value>`` (URL-quoted)
  /hold/<gate>/<rest>                   <rest>, once the test calls ``host.release(gate)``

``agents`` holds the User-Agent headers the host has seen.

``image_urls(hosts)`` spreads search results over hosts, for a search imitation.
"""

from __future__ import annotations

import io
import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from PIL import Image, ImageDraw

CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
}
HOLD_LIMIT = 60.0  # seconds a /hold/ request waits for its gate before it is answered anyway
SAVE = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}


def picture(seed: int, width: int, height: int, noise: bool = False) -> Image.Image:
    """A distinct picture per seed: random shapes on a random background."""
    rng = random.Random(seed)
    img = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randrange(width // 2 + 1), y0 + rng.randrange(height // 2 + 1)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)([x0, y0, x1, y1], fill=colour)
    if noise:
        grain = Image.effect_noise((width, height), 40).convert("RGB")
        img = Image.blend(img, grain, 0.15)
    return img


@lru_cache(maxsize=4096)
def encoded(
    seed: int,
    fmt: str,
    width: int,
    height: int,
    quality: int = 85,
    noise: bool = False,
    resized: bool = False,
) -> bytes:
    """Encoded bytes of picture ``seed``; ``resized`` scales the 640x480 original instead
    of drawing the picture at the new size (a resized copy of the same picture)."""
    buf = io.BytesIO()
    if resized:
        img = picture(seed, 640, 480, noise).resize((width, height), Image.Resampling.BILINEAR)
    else:
        img = picture(seed, width, height, noise)
    if fmt == "gif":
        img = img.convert("P")
    options = {"quality": quality} if SAVE[fmt] in ("JPEG", "WEBP") else {}
    img.save(buf, SAVE[fmt], **options)
    return buf.getvalue()


@lru_cache(maxsize=256)
def animated(seed: int, fmt: str, width: int, height: int, frames: int = 3) -> bytes:
    """An animated image of ``frames`` distinct frames (GIF, APNG or WebP)."""
    images = [picture(seed * 1000 + n, width, height) for n in range(max(frames, 1))]
    if fmt == "gif":
        images = [img.convert("P") for img in images]
    buf = io.BytesIO()
    images[0].save(buf, SAVE[fmt], save_all=True, append_images=images[1:], duration=100, loop=0)
    return buf.getvalue()


def bomb_png(width: int = 40000, height: int = 40000) -> bytes:
    """A valid-looking PNG header declaring a huge image, with a tiny body."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
        + chunk(b"IEND", b"")
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as real web servers and CDNs set it: without it Nagle's algorithm
    # holds the body's last segment until the client's delayed ACK (~40 ms a response).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(
        self, status: int, body: bytes = b"", ctype: str = "application/octet-stream", **headers
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**headers, **self.extra_headers}.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.extra_headers: dict[str, str] = {}
        with self.server.lock:
            self.server.agents.add(self.headers.get("User-Agent", ""))
            self.server.hits[path] += 1
            count = self.server.hits[path]
            self.server.active += 1
            self.server.peak_active = max(self.server.peak_active, self.server.active)
        try:
            if self.server.latency:
                time.sleep(self.server.latency)
            self._route(path, query, count)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with self.server.lock:
                self.server.active -= 1

    def _route(self, path: str, query: dict, count: int) -> None:
        if path == "/bomb.png":  # 40000 x 40000 unless asked otherwise
            return self._send(
                200, bomb_png(int(query.get("w", 40000)), int(query.get("h", 40000))), "image/png"
            )
        width, height = int(query.get("w", 320)), int(query.get("h", 240))
        if path.startswith("/file/") and self.server.files is not None:
            name = path.rsplit("/", 1)[1]
            try:
                body = (self.server.files / name).read_bytes()
            except OSError:
                return self._send(404, b"not found", "text/plain")
            return self._send(200, body, CONTENT_TYPES.get(name.rsplit(".", 1)[-1], "image/jpeg"))
        if path.startswith("/anim/"):
            seed_text, _, fmt = path.rsplit("/", 1)[1].partition(".")
            if fmt not in ("gif", "png", "webp"):
                return self._send(404)
            body = animated(int(seed_text), fmt, width, height, int(query.get("frames", 3)))
            return self._send(200, body, CONTENT_TYPES[fmt])
        if path.startswith(("/img/", "/same/")):
            name = path.rsplit("/", 1)[1]
            seed_text, _, fmt = name.partition(".")
            if fmt not in SAVE:
                return self._send(404)
            quality = int(query.get("q", 85))
            body = encoded(
                int(seed_text),
                fmt,
                width,
                height,
                quality,
                query.get("noise") == "1",
                path.startswith("/same/"),
            )
            return self._send(200, body, CONTENT_TYPES[fmt])
        if path == "/html.jpg":
            return self._send(200, b"<!DOCTYPE html><html><body>Not here</body></html>", "image/jpeg")
        if path == "/svg.png":
            svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="900" height="900"></svg>'
            return self._send(200, svg, "image/png")
        if path == "/truncated.jpg":
            body = encoded(7, "jpeg", 640, 480)
            return self._send(200, body[: len(body) // 2], "image/jpeg")
        if path == "/garbage.jpg":
            return self._send(200, random.Random(5).randbytes(5000), "image/jpeg")
        if path == "/endless.jpg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            block = b"\xff" * 65536
            for _ in range(100000):
                self.wfile.write(block)
            return None
        if path == "/trickle.jpg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                self.wfile.write(b"\xff")
                self.wfile.flush()
                time.sleep(1)
            return None
        if path == "/slow-headers.jpg":  # each header byte a second: no read timeout trips
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nX-Slow: ")
            for _ in range(1000):
                self.wfile.write(b"a")
                self.wfile.flush()
                time.sleep(1)
            return None
        if path in ("/slow-404", "/slow-redirect"):  # an unwanted body, a byte a second
            self.send_response(404 if path == "/slow-404" else 302)
            if path == "/slow-redirect":
                self.send_header("Location", "/img/1.jpeg")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(1)
            return None
        if path == "/goto":  # a redirect to any URL
            return self._send(302, Location=query["u"])
        if path == "/loop.jpg":
            return self._send(302, Location="/loop.jpg")
        if path == "/to-private.jpg":
            return self._send(302, Location="http://10.0.0.1/x.jpg")
        if path.startswith("/redirect/"):
            _, _, n, rest = path.split("/", 3)
            target = f"/redirect/{int(n) - 1}/{rest}" if int(n) > 1 else "/" + rest
            return self._send(
                302, Location=target + ("?" + urlsplit(self.path).query if "?" in self.path else "")
            )
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            extra = {"Retry_After": "1"} if code in (429, 503) else {}
            return self._send(code, b"status", "text/plain", **extra)
        if path.startswith("/xrobots/"):
            _, _, value, rest = path.split("/", 3)
            self.extra_headers["X-Robots-Tag"] = unquote(value)
            return self._route("/" + rest, query, count)
        if path.startswith("/hold/"):
            _, _, gate, rest = path.split("/", 3)
            self.server.gate(gate).wait(HOLD_LIMIT)
            return self._route("/" + rest, query, count)
        if path.startswith("/flaky/"):
            _, _, code, k, rest = path.split("/", 4)
            if count <= int(k):
                extra = {"Retry_After": "1"} if int(code) in (429, 503) else {}
                return self._send(int(code), b"busy", "text/plain", **extra)
            return self._route("/" + rest, query, count)
        return self._send(404, b"not found", "text/plain")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, latency: float, files: Path | None = None) -> None:
        super().__init__(address, _Handler)
        self.latency = latency
        self.files = files
        self.hits: Counter = Counter()
        self.agents: set[str] = set()
        self.lock = threading.Lock()
        self.active = 0  # requests being answered now
        self.peak_active = 0
        self._gates: dict[str, threading.Event] = {}

    def gate(self, name: str) -> threading.Event:
        with self.lock:
            return self._gates.setdefault(name, threading.Event())


class ImageHost:
    """One image host; ``with ImageHost("127.0.0.2", latency=0.1) as host: host.url("/img/1.jpeg")``."""

    def __init__(
        self, address: str = "127.0.0.1", port: int = 0, latency: float = 0.0, files: Path | None = None
    ) -> None:
        if not address.startswith("127."):
            raise ValueError("test hosts live on 127.0.0.0/8 only")
        self._server = _Server((address, port), latency, files)
        self.address, self.port = self._server.server_address[:2]
        # A short poll: stop() returns at once (the default half second adds up over a suite).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def latency(self) -> float:
        """Seconds each response waits before it is answered; may change while running."""
        return self._server.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._server.latency = seconds

    @property
    def hits(self) -> Counter:
        return self._server.hits

    @property
    def agents(self) -> set[str]:
        """The User-Agent headers of the requests received."""
        return self._server.agents

    @property
    def peak_active(self) -> int:
        """The most requests this host was answering at one time."""
        return self._server.peak_active

    def url(self, path: str) -> str:
        return self.base + path

    def release(self, gate: str) -> None:
        """Answer the requests held at ``/hold/<gate>/...``, and any that come later."""
        self._server.gate(gate).set()

    def start(self) -> ImageHost:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ImageHost:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def image_urls(
    hosts: Sequence[ImageHost],
    *,
    seed: int = 1000,
    fmt: str = "jpeg",
    width: int = 320,
    height: int = 240,
    junk: Callable[[int], bool] | None = None,
) -> Callable[[int], str]:
    """The URL of search result ``index`` (from 1), for ``SearchImitation(image_url=...)``:
    picture ``seed + index`` on ``hosts[index % len(hosts)]``, or - where ``junk(index)``
    is true - an HTML page served as an image."""

    def url(index: int) -> str:
        host = hosts[index % len(hosts)]
        if junk is not None and junk(index):
            return host.url(f"/html.jpg?i={index}")
        return host.url(f"/img/{seed + index}.{fmt}?w={width}&h={height}")

    return url
