"""A real Prometheus (Debian's ``prometheus``) on a free loopback port, run with the
project's own ops/prometheus/prometheus.yml and rules.yml, copied to a folder of its
own (its data too) with targets that name the servers a test started."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from pathlib import Path

import requests

from tests.mailserver import free_port
from tests.paths import REPO
from tests.waiting import wait_for

OPS = REPO / "ops" / "prometheus"


class PrometheusServer:
    def __init__(self, folder: Path, *, workers: list[str] = (), webs: list[str] = ()) -> None:
        self.folder = folder
        self.workers = list(workers)
        self.webs = list(webs)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrometheusServer:
        shutil.rmtree(self.folder, ignore_errors=True)
        (self.folder / "targets").mkdir(parents=True)
        for name in ("prometheus.yml", "rules.yml"):
            shutil.copy(OPS / name, self.folder / name)
        for name, targets in (("worker", self.workers), ("web", self.webs)):
            groups = [{"targets": targets, "labels": {"deployment": "test"}}] if targets else []
            (self.folder / "targets" / f"{name}.yml").write_text(json.dumps(groups))
        log = open(self.folder / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [
                shutil.which("prometheus") or "/usr/bin/prometheus",
                f"--config.file={self.folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        assert wait_for(self._ready, timeout=60), self.log()[-3000:]
        return self

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        return (self.folder / "prometheus.log").read_text(errors="replace")

    def query(self, expression: str) -> list[dict]:
        """An instant query's result vector."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=10)
        answer.raise_for_status()
        return answer.json()["data"]["result"]

    def value(self, expression: str) -> float | None:
        """The single value of ``expression`` now, None while it has none."""
        result = self.query(expression)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(20)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
