"""Talking to the suite's servers at the socket level, and a resolver that looks up nothing."""

from __future__ import annotations

import ipaddress
import socket

from downloader.egress import EgressGuard


def ask(guard: EgressGuard, request: bytes, then: bytes = b"") -> bytes:
    host, port = guard.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                return answer
            answer += chunk
        if then:
            sock.sendall(then)
        sock.settimeout(2)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
        return answer


def addresses_only(host: str, port: int) -> list[str]:
    """A resolver for tests: IP literals only, no name is looked up."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        raise OSError(f"{host}: not looked up in tests") from None
