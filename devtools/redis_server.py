"""A private Redis for development, tests and the local cluster (Debian's redis-server).

Binds one loopback address and port, keeps its data in its own folder with the
append-only file on (django-q2's queue is a Redis list: it survives a restart) and no
snapshots. It asks for a password (``requirepass``, made once in its folder, mode
0600; given to the server in a private config file, never on its command line, which
every user can read), which its ``url`` carries. Standard library only.

    python -m devtools.redis_server start|stop|status --dir D --port P [--host H]
"""

from __future__ import annotations

import secrets
import shutil
import socket
import sys
from pathlib import Path

from devtools.service import Service, cli, private_file


def redis_binary() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if not found:
        raise RuntimeError("redis: redis-server is not installed; run `make deps`")
    return found


def ping(host: str, port: int, timeout: float = 2.0, password: str = "") -> bool:
    """True if a Redis server on host:port answers PING (not while it loads its data)."""
    hello = f"AUTH {password}\r\n".encode() if password else b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(hello + b"PING\r\n")
            answer = b""
            while answer.count(b"\r\n") < (2 if password else 1):
                chunk = sock.recv(64)
                if not chunk:
                    break
                answer += chunk
            return answer.splitlines()[-1:] == [b"+PONG"]
    except OSError:
        return False


class RedisServer(Service):
    name = "redis"

    @property
    def password(self) -> str:
        return private_file(self.directory / "password", lambda: secrets.token_urlsafe(24))

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    @property
    def config_file(self) -> Path:
        return self.directory / "redis.conf"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.unlink(missing_ok=True)
        private_file(self.config_file, lambda: f"requirepass {self.password}")

    def command(self) -> list[str]:
        return [
            redis_binary(),
            str(self.config_file),
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
        return ping(self.host, self.port, password=self.password)


def main(argv: list[str] | None = None) -> int:
    return cli("redis_server", lambda a: RedisServer(a.dir, a.port, a.host), argv)


if __name__ == "__main__":
    sys.exit(main())
