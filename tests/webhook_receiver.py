"""A webhook receiver on loopback for tests: it verifies every delivery's signature
with the ``standardwebhooks`` package, as a customer's server would, keeps what came,
and answers what the test scripts (``answers(webhook_id, try_number) -> status``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.waiting import wait_for


@dataclass
class Received:
    webhook_id: str
    type: str
    verified: bool
    body: dict
    headers: dict[str, str]
    answered: int


@dataclass
class Receiver:
    address: str
    secret: str = ""
    answers: Callable[[str, int], int] = lambda webhook_id, n: 200
    retry_after: str = ""  # sent with every answer that is not 2xx, when set
    reply: bytes = b"ok"  # the body of every answer
    latency: float = 0.0  # seconds before answering (a slow receiver)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.address}:{self._server.server_address[1]}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver._take(dict(self.headers.items()), raw)
                if receiver.latency:
                    threading.Event().wait(
                        receiver.latency
                    )  # the server is slow, the test does not wait on it
                self.send_response(status)
                if receiver.retry_after and not 200 <= status < 300:
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Length", str(len(receiver.reply)))
                self.end_headers()
                self.wfile.write(receiver.reply)

        self._server = ThreadingHTTPServer((self.address, 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _take(self, headers: dict[str, str], raw: bytes) -> int:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            Webhook(self.secret).verify(raw, lowered)
            verified = True
        except WebhookVerificationError:
            verified = False
        body = json.loads(raw or b"{}")
        with self._lock:
            webhook_id = lowered.get("webhook-id", "")
            tries = sum(1 for r in self.received if r.webhook_id == webhook_id) + 1
            status = self.answers(webhook_id, tries)
            self.received.append(Received(webhook_id, body.get("type", ""), verified, body, lowered, status))
        return status

    def of_type(self, event_type: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.type == event_type]

    def wait_for_type(self, event_type: str, *, answered: int = 200, timeout: float = 60) -> list[Received]:
        def done() -> list[Received]:
            return [r for r in self.of_type(event_type) if r.answered == answered]

        return wait_for(done, timeout, interval=0.2)
