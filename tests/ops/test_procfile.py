"""The Procfile as a platform runs it (honcho, a Procfile runner): its ``release``
process makes the schema of a fresh deploy (relational tables, a new Cassandra
keyspace, the storage), then ``web`` and ``worker`` take a job from the form to the
downloaded zip, against the suite's own Cassandra node and SMTP server."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests
from django.conf import settings

from jobs.store import cassandra
from tests.factories import images_in_archive
from tests.mailserver import free_port, worker_mail_env
from tests.paths import REPO
from tests.processes import group_stop
from tests.waiting import wait_for
from tests.web_client import WebClient, download_path

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.imitation(total=40),
]
EMAIL = "ada.procfile@example.org"


@pytest.fixture
def fresh_deploy(worker_env, imitation, mailserver, tmp_path):
    """The environment of a deploy nobody has run before: a new SQLite file and a new
    Cassandra keyspace (dropped afterwards), its own var folder."""
    keyspace = f"test_procfile_{time.monotonic_ns()}"
    port = free_port()
    env = {
        **worker_env,
        **{name: str(value) for name, value in imitation.engine_settings().items()},
        **worker_mail_env(mailserver.port),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        "CASSANDRA_KEYSPACE": keyspace,
        "CASSANDRA_REPLICATION": "1",
        "IMAGEDL_VAR_DIR": str(tmp_path / "var"),
        "IMAGEDL_BASE_URL": f"http://127.0.0.1:{port}",
        "IMAGEDL_WEB_HOST": "127.0.0.1",
        "IMAGEDL_EXTRA_ALLOWED_NETWORKS": ",".join(settings.IMAGEDL_EXTRA_ALLOWED_NETWORKS),
        "WEB_CONCURRENCY": "1",
    }
    (tmp_path / "empty.env").write_text("")
    yield env, port, tmp_path
    cassandra.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)


def honcho(tmp_path: Path, *args: str) -> list[str]:
    return [
        *(sys.executable, "-m", "honcho", "-f", str(REPO / "Procfile"), "-d", str(REPO)),
        *("-e", str(tmp_path / "empty.env"), "--no-colour"),
        *args,
    ]


def test_release_then_web_and_worker_deliver_a_job(fresh_deploy, mailserver):
    env, port, tmp_path = fresh_deploy
    release = subprocess.run(
        honcho(tmp_path, "start", "release"), cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert release.returncode == 0, release.stdout[-3000:] + release.stderr[-3000:]
    tables = cassandra.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (env["CASSANDRA_KEYSPACE"],)
    )
    assert {"job", "job_active", "job_mail"} <= {row["table_name"] for row in tables}

    log = open(tmp_path / "honcho.log", "wb")
    # honcho gives web PORT=port (and worker port + 100, which it does not use).
    proc = subprocess.Popen(
        honcho(tmp_path, "start", "-p", str(port), "web", "worker"),
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        web = WebClient(f"http://127.0.0.1:{port}")
        assert wait_for(lambda: _answers(web), timeout=90), (tmp_path / "honcho.log").read_text()[-3000:]
        web.submit_ok(EMAIL, 5)
        ready = mailserver.wait_for(EMAIL, "are ready", timeout=240)
        answer = web.session.get(web.base + download_path(ready), timeout=60)
        assert answer.status_code == 200
        with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
            assert len(images_in_archive(archive.namelist())) == 5
    finally:
        group_stop(proc, grace=30)
        log.close()


def _answers(web: WebClient) -> bool:
    try:
        return web.session.get(web.base + "/", timeout=5).status_code == 200
    except requests.RequestException:
        return False
