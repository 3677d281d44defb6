"""Secrets across machines. A SECRET_KEY from the per-machine fallback file cannot
serve several machines (tasks signed on one are dropped by another's workers; links
made by one web fail on the next), so once Redis, PostgreSQL or a bucket says the
deployment spans machines, `manage.py check --deploy` and a worker's start fail with
a clear message. The local cluster prints no password, keeps cluster.json private
from its first byte, and its Redis asks for a password."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.cluster import Layout, summary
from devtools.redis_server import RedisServer
from tests.mailserver import free_port
from tests.paths import REPO

SHARED = {
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "DATABASE_URL": "postgres://imagedl:hunter2@127.0.0.1:1/imagedl",
    "IMAGEDL_S3_BUCKET": "imagedl",
}


def _manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", *SHARED)}
    base.update(IMAGEDL_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="imagedl_site.settings", **env)
    command = [sys.executable, str(REPO / "manage.py"), *args]
    return subprocess.run(command, cwd=REPO, env=base, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", sorted(SHARED))
def test_check_deploy_and_a_worker_refuse_a_per_machine_key_on_several_machines(tmp_path, name):
    checked = _manage(tmp_path, "check", "--deploy", **{name: SHARED[name]})
    assert checked.returncode != 0
    assert "imagedl.E001" in checked.stderr and "SECRET_KEY" in checked.stderr and name in checked.stderr
    worker = _manage(tmp_path, "qcluster", **{name: SHARED[name]})
    assert worker.returncode != 0 and "imagedl.E001" in worker.stderr


def test_an_explicit_key_or_one_machine_passes(tmp_path):
    one_machine = _manage(tmp_path, "check", "--deploy", "--tag", "security")
    assert "imagedl.E001" not in one_machine.stderr
    keyed = _manage(tmp_path, "check", "--deploy", SECRET_KEY="x" * 60, IMAGEDL_S3_BUCKET="imagedl")
    assert "imagedl.E001" not in keyed.stderr


def test_the_cluster_file_is_private_from_its_first_byte_and_its_summary_holds_no_password(
    tmp_path, monkeypatch
):
    # An open umask and no chmod: a file that becomes private only after a chmod shows.
    monkeypatch.setattr(Path, "chmod", lambda *args, **kwargs: None)
    monkeypatch.setattr(os, "chmod", lambda *args, **kwargs: None)
    old = os.umask(0)
    try:
        layout = Layout.first(tmp_path / "cluster", free_ports=True, environ={})
    finally:
        os.umask(old)
    assert stat.S_IMODE(layout.file.stat().st_mode) == 0o600
    assert [p.name for p in layout.file.parent.iterdir()] == ["cluster.json"]  # no temporary left
    printed = json.dumps(summary(layout, started=0.0))
    assert layout.postgres().password not in printed and layout.redis().password not in printed
    assert "postgres://" in printed and "redis://" in printed


def test_postgres_status_prints_no_password(tmp_path):
    port = free_port()
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.postgres",
            "status",
            "--dir",
            str(tmp_path / "pg"),
            "--port",
            str(port),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    password = (tmp_path / "pg" / "password").read_text().strip()
    assert password and password not in status.stdout + status.stderr


def test_the_local_redis_asks_for_a_password(tmp_path):
    server = RedisServer(tmp_path / "redis", free_port())
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"PING\r\n")
            assert sock.recv(64).startswith(b"-NOAUTH")
        import redis

        assert redis.Redis.from_url(server.url).ping()  # the URL carries the password
        cmdline = Path(f"/proc/{server.pid()}/cmdline").read_bytes()
        assert server.password.encode() not in cmdline  # not in the process list
        assert server.password not in json.dumps(server.status())
    finally:
        server.stop()
