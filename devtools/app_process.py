"""The project's own processes in a local cluster: a worker (``manage.py qcluster``) or
a web process (gunicorn), each with its folder (its ``IMAGEDL_VAR_DIR``, pid file and
log) and its environment, started and stopped like the engines' servers
(devtools/service.py).

A pid counts only while the process carries this process's marker in its environment
(a worker's command line says nothing about which worker it is).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from devtools.service import Service

ROOT = Path(__file__).resolve().parent.parent
MARKER = "IMAGEDL_CLUSTER_PART"


class AppProcess(Service):
    """``kind`` is "worker" or "web"; a web listens on ``port``."""

    def __init__(self, directory: Path, name: str, kind: str, env: dict[str, str], port: int = 0) -> None:
        super().__init__(directory, port)
        self.name = name
        self.kind = kind
        self.env = env

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}" if self.kind == "web" else ""

    @property
    def marker(self) -> bytes:
        return f"{MARKER}={self.directory}".encode()

    @property
    def offset_file(self) -> Path:
        return self.directory / f"{self.name}.log-offset"

    def command(self) -> list[str]:
        if self.kind == "worker":
            return [sys.executable, str(ROOT / "manage.py"), "qcluster"]
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "imagedl_site.wsgi",
            "--config",  # Prometheus' multiprocess hooks
            "python:imagedl_site.gunicorn_conf",
            "--chdir",
            str(ROOT),
            "--bind",
            f"{self.host}:{self.port}",
            "--workers",
            self.env.get("IMAGEDL_CLUSTER_WEB_WORKERS", "2"),
            "--threads",
            "4",
            "--timeout",
            "60",
            "--access-logfile",
            "-",
            "--logger-class",  # the access log without tokens
            "imagedl_site.access_log.TokenlessLogger",
        ]

    def pid(self) -> int | None:
        pid = super().pid()
        if pid is None:
            return None
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if self.marker in environ else None

    def markers(self) -> list[bytes]:
        return [b"qcluster" if self.kind == "worker" else b"gunicorn"]

    def prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        size = self.log_file.stat().st_size if self.log_file.exists() else 0
        self.offset_file.write_text(str(size))

    def environment(self) -> dict[str, str]:
        name, value = self.marker.decode().split("=", 1)
        return {**self.env, name: value}

    def working_directory(self) -> Path:
        return ROOT

    def answering(self) -> bool:
        if self.pid() is None:
            return False
        if self.kind == "web":
            return self.health() is not None
        # django-q2's cluster runs once its sentinel has started the pusher, the
        # monitor and a worker process under it; it also says so in its log (at INFO,
        # which IMAGEDL_LOG_LEVEL may hide).
        if len(descendants(self.pid() or 0)) >= 4:
            return True
        try:
            offset = int(self.offset_file.read_text())
            with open(self.log_file, "rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
        except (OSError, ValueError):
            return False
        return "Q Cluster" in text and "running." in text

    def health(self) -> dict | None:
        """This web's /healthz answer (also when it says 503), or None."""
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=5) as answer:  # noqa: S310 (http://127.x)
                return json.loads(answer.read())
        except urllib.error.HTTPError as answer:
            try:
                return json.loads(answer.read())
            except ValueError:
                return None
        except (OSError, ValueError):
            return None


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, their children...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], list(children.get(pid, []))
    while queue:
        child = queue.pop()
        found.append(child)
        queue.extend(children.get(child, []))
    return found
