"""An egress guard for the browser that opens users' pages.

The page extractor loads a page a stranger chose, and that page decides what else
the browser fetches: images, scripts, frames, redirects. Chromium is pointed at this
small HTTP proxy on 127.0.0.1 (loopback included, ``<-loopback>``), and every request
and every CONNECT tunnel is checked with the download chokepoint's rules
(``downloader.http.resolve_checked``) before any connection is made; the connection
then goes to the address that was checked. Refused requests get a 403 and are noted.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from downloader.http import FetchPolicy, Refused, Resolver, is_loopback, resolve_checked, system_resolver

logger = logging.getLogger("imagedl.downloader")

HOP_BY_HOP = {
    "proxy-connection",
    "proxy-authorization",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
}
IDLE_TIMEOUT = 30.0


def _relay(one: socket.socket, other: socket.socket, idle: float = IDLE_TIMEOUT) -> None:
    """Copy bytes both ways until either side closes or both are idle for ``idle`` s."""
    peers = {one: other, other: one}
    while True:
        readable, _, _ = select.select(list(peers), [], [], idle)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            peers[sock].sendall(data)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args) -> None:  # quiet; refusals are logged below
        pass

    def _checked(self, url: str) -> tuple[str, int] | None:
        try:
            if self.server.loopback_only and not _loopback_host(urlsplit(url).hostname or ""):
                raise Refused("not_loopback")  # no name is even looked up
            _scheme, _host, port, address, _path = resolve_checked(
                url, self.server.policy, self.server.resolver
            )
        except Refused as exc:
            self.server.note_refused(url, exc.reason)
            self.send_error(403, "refused by imagedl's egress guard")
            self.close_connection = True
            return None
        return address, port

    def _connect(self, address: str, port: int) -> socket.socket | None:
        try:
            return socket.create_connection((address, port), timeout=self.server.policy.connect_timeout)
        except OSError:
            self.send_error(502, "cannot reach the site")
            self.close_connection = True
            return None

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        target = self._checked(f"https://{host}:{port}/") if port.isdigit() else None
        if target is None:
            if not port.isdigit():
                self.send_error(400)
            return
        upstream = self._connect(*target)
        if upstream is None:
            return
        with upstream:
            self.send_response(200, "Connection Established")
            self.end_headers()
            self.wfile.flush()
            upstream.settimeout(None)
            _relay(self.connection, upstream)
        self.close_connection = True

    def _forward(self) -> None:
        url = self.path
        if urlsplit(url).scheme != "http":
            self.send_error(400, "absolute http URLs only")
            self.close_connection = True
            return
        target = self._checked(url)
        if target is None:
            return
        upstream = self._connect(*target)
        if upstream is None:
            return
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = [f"{self.command} {path} HTTP/1.1"]
        head += [f"{name}: {value}" for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP]
        head.append("Connection: close")  # one request per tunnel: the next one is checked anew
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        with upstream:
            upstream.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            upstream.settimeout(None)
            _relay(self.connection, upstream)
        self.close_connection = True

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _forward


def _loopback_host(host: str) -> bool:
    return host == "localhost" or is_loopback(host)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, policy: FetchPolicy, resolver: Resolver, loopback_only: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.policy = policy
        self.resolver = resolver
        self.loopback_only = loopback_only
        self.refused: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def note_refused(self, url: str, reason: str) -> None:
        # Not the URL: it can name the user's page and query, and log files outlive the purge.
        logger.warning("egress guard refused a request (%s)", reason)
        with self._lock:
            self.refused.append((url, reason))


class EgressGuard:
    """``with EgressGuard(policy) as guard: chromium --proxy-server=guard.url``.

    ``policy``: the download chokepoint's rules every request is checked with.
    ``loopback_only`` (``BrowserOptions.loopback_only``, on in tests) refuses every host
    that is not a loopback address or localhost, before any name is looked up."""

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        resolver: Resolver = system_resolver,
        *,
        loopback_only: bool = False,
    ) -> None:
        self._server = _Server(policy or FetchPolicy(), resolver, loopback_only)
        self._thread = threading.Thread(target=self._server.serve_forever, name="imagedl-egress", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def host(self) -> str:
        """The address the guard listens on (127.0.0.1)."""
        return str(self._server.server_address[0])

    @property
    def refused(self) -> list[tuple[str, str]]:
        """(URL, reason) of every request refused so far."""
        return list(self._server.refused)

    def start(self) -> EgressGuard:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> EgressGuard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
