"""A private Redis for development, tests and the local cluster (Debian's redis-server).

Binds one loopback address and port, keeps its data in its own folder with the
append-only file on (django-q2's queue is a Redis list: it survives a restart) and no
snapshots. Standard library only.

    python -m devtools.redis_server start|stop|status --dir D --port P [--host H]
"""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path

from devtools.service import Service, cli


def redis_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if not found:
        raise RuntimeError("redis: redis-server is not installed; run `make deps`")
    return found


def ping(host: str, port: int, timeout: float = 2.0) -> bool:
    """True if a Redis server on host:port answers PING (not while it loads its data)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(Service):
    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            redis_binary(),
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]

    def markers(self) -> list[bytes]:
        # redis-server rewrites its process title to "redis-server HOST:PORT" (the port
        # it was started with, which the pid file records).
        return [b"redis-server", f"{self.host}:{self.recorded_port() or self.port}".encode()]

    def answering(self) -> bool:
        return ping(self.host, self.port)


def main(argv: list[str] | None = None) -> int:
    return cli("redis_server", lambda a: RedisServer(a.dir, a.port, a.host), argv)


if __name__ == "__main__":
    sys.exit(main())
