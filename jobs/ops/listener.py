"""The worker's ``/metrics``: a small HTTP server in a thread of ``manage.py
qcluster``'s main process, which adds up the counters of the processes django-q2
forks (``PROMETHEUS_MULTIPROC_DIR``). Same rule as the web: loopback or the token,
else 404. It answers nothing but ``GET /metrics``."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jobs.ops.exposition import CONTENT_TYPE, metrics_access_allowed, metrics_text

logger = logging.getLogger("imagedl.metrics")


class _Handler(BaseHTTPRequestHandler):
    server_version = "imagedl-worker"
    sys_version = ""

    def do_GET(self) -> None:
        allowed = self.path.split("?", 1)[0] == "/metrics" and metrics_access_allowed(
            self.client_address[0], self.headers.get("Authorization", "")
        )
        if not allowed:
            self._answer(404, b"not found\n", "text/plain; charset=utf-8")
            return
        try:
            body = metrics_text()
        except Exception as exc:
            logger.warning("metrics: the exposition failed (%s)", type(exc).__name__)
            self._answer(500, b"error\n", "text/plain; charset=utf-8")
            return
        self._answer(200, body, CONTENT_TYPE)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # scrapes every 15 s would drown the log


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 16


def metrics_listener_start(host: str, port: int) -> ThreadingHTTPServer | None:
    """Serve ``/metrics`` on ``host:port`` in a daemon thread; None when off (port 0)
    or when the port is taken (logged: the worker works on without it)."""
    if not port:
        return None
    try:
        server = _Server((host, port), _Handler)
    except OSError as exc:
        logger.warning("metrics: cannot listen on %s:%d (%s)", host, port, exc.strerror or type(exc).__name__)
        return None
    thread = threading.Thread(target=server.serve_forever, name="imagedl-metrics", daemon=True)
    thread.start()
    logger.info("metrics: listening on %s:%d", host, server.server_address[1])
    return server
