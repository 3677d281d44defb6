"""A real SMTP server on loopback for end-to-end tests (aiosmtpd).

Messages are parsed and kept in memory; ``stop()`` and ``start()`` on the same port
imitate a mail server that goes down and comes back.
"""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.waiting import wait_for


def worker_mail_env(port: int, **extra: str) -> dict[str, str]:
    """A worker's environment that mails the test server on 127.0.0.1:``port``, with
    links to http://testserver (the test client's host), plus ``extra``."""
    return {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "IMAGEDL_BASE_URL": "http://testserver",
        **extra,
    }


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class _Collector:
    def __init__(self, inbox: list[EmailMessage], lock: threading.Lock) -> None:
        self.inbox = inbox
        self.lock = lock

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.inbox.append(message)
        return "250 Message accepted for delivery"


class MailServer:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.inbox: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> MailServer:
        self._controller = Controller(_Collector(self.inbox, self._lock), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages_to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.inbox if address in str(m["To"])]

    def wait_for(self, address: str, subject_contains: str, timeout: float = 60) -> EmailMessage:
        def matching() -> EmailMessage | None:
            return next((m for m in self.messages_to(address) if subject_contains in str(m["Subject"])), None)

        message = wait_for(matching, timeout, interval=0.2)
        if message is not None:
            return message
        seen = [str(m["Subject"]) for m in self.messages_to(address)]
        raise AssertionError(f"no email with {subject_contains!r} to {address} within {timeout}s; got {seen}")


def text_body(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_body(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def link_in(message, label_pattern: str) -> str:
    """The URL after ``label_pattern`` in a mail's text body."""
    match = re.search(label_pattern + r"\s*(http\S+)", text_body(message))
    assert match, text_body(message)
    return match.group(1)
