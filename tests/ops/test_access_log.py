"""gunicorn's access log holds no token: the route is logged with every signed token
(a job's, a series', an unsubscribe link's) replaced by "…", in the request line, the
path, the Referer (a thumbnail's is the status page) and a redirect's Location. The
web process runs exactly as the Procfile says; `make run` and the local cluster use
the same logger class."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from devtools import app_process, run_all
from tests.mailserver import free_port
from tests.paths import REPO
from tests.waiting import wait_for

TOKEN = "eyJqIjoiZjAwIiwicCI6InN0YXR1cyJ9:1xZuo7:2u5hsZFryhW8mMRyaa7P5YSCI6jR1LfYAcstqZwNJGY"
LOGGER = "imagedl_site.access_log.TokenlessLogger"


def _procfile_web(port: int) -> list[str]:
    line = next(x for x in (REPO / "Procfile").read_text().splitlines() if x.startswith("web:"))
    command = line.removeprefix("web:").replace("${PORT:-8000}", str(port))
    command = command.replace("${WEB_CONCURRENCY:-3}", "1").replace(
        "${IMAGEDL_WEB_HOST:-0.0.0.0}", "127.0.0.1"
    )
    words = shlex.split(command)
    assert words[0] == "gunicorn"
    return [sys.executable, "-m", *words]


def _get(url: str, referer: str = "") -> None:
    request = urllib.request.Request(url, headers={"Referer": referer} if referer else {})
    try:
        urllib.request.urlopen(request, timeout=10).read()
    except urllib.error.HTTPError:
        pass  # 404 and 410 are fine: the line is what matters


def test_the_procfile_web_process_logs_routes_without_tokens(tmp_path):
    port = free_port()
    log = tmp_path / "web.log"
    env = {**os.environ, "SECRET_KEY": "access-log-test", "IMAGEDL_VAR_DIR": str(tmp_path / "var")}
    with log.open("wb") as out:
        web = subprocess.Popen(_procfile_web(port), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: "Booting worker" in log.read_text(), timeout=60), log.read_text()
        _get(f"{base}/jobs/{TOKEN}/thumb/1.jpg", referer=f"{base}/jobs/{TOKEN}/")
        _get(f"{base}/series/confirm/{TOKEN}/")
        _get(f"{base}/series/{TOKEN}/stop")
        _get(f"{base}/unsubscribe/{TOKEN}")
        assert wait_for(lambda: log.read_text().count("/unsubscribe/") >= 1, timeout=10)
    finally:
        web.terminate()
        web.wait(timeout=30)
    text = log.read_text()
    assert TOKEN not in text and TOKEN.split(":")[0] not in text
    for route in (
        "/jobs/…/thumb/1.jpg",
        "/jobs/…/",
        "/series/confirm/…/",
        "/series/…/stop",
        "/unsubscribe/…",
    ):
        assert route in text, text


def test_make_run_and_the_cluster_use_the_same_logger():
    assert LOGGER in Path(run_all.__file__).read_text()
    assert LOGGER in Path(app_process.__file__).read_text()
    assert f"--logger-class {LOGGER}" in (REPO / "Procfile").read_text()
