"""A gunicorn process whose threads are all busy leaves new connections to the
others: with the project's gunicorn configuration (2 processes of 1 thread), while
one process holds a request, every new connection is answered at once by the other,
none waits behind the held one (gunicorn's own ``gthread`` takes connections it
cannot serve yet)."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading

from tests.mailserver import free_port
from tests.paths import REPO
from tests.waiting import wait_for


def get(port: int, path: str, timeout: float) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def test_new_connections_go_to_the_process_with_a_free_thread(tmp_path):
    port = free_port()
    mark, release = tmp_path / "held", tmp_path / "release"
    env = {
        **os.environ,
        "HOLD_MARK": str(mark),
        "HOLD_RELEASE": str(release),
        "IMAGEDL_VAR_DIR": str(tmp_path),
    }
    # The project's configuration (its worker class), a tiny app instead of Django.
    command = [sys.executable, "-m", "gunicorn", "tests.ops.hold_app:application"]
    command += ["--config", "python:imagedl_site.gunicorn_conf", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "2", "--threads", "1", "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=REPO, env=env)
    try:
        assert wait_for(lambda: _answers(port), timeout=60)
        assert wait_for(lambda: len({get(port, "/pid", 5) for _ in range(20)}) == 2, timeout=30)
        held: list[str] = []
        holder = threading.Thread(target=lambda: held.append(get(port, "/hold", 60)), daemon=True)
        holder.start()
        assert wait_for(mark.exists, timeout=10, interval=0.05)
        busy = mark.read_text()
        answers = [get(port, "/pid", 5) for _ in range(12)]  # a held connection times out
        assert busy not in answers
        release.touch()
        holder.join(10)
        assert held == [busy]
    finally:
        release.touch()
        server.terminate()
        server.wait(20)


def _answers(port: int) -> bool:
    try:
        get(port, "/pid", 2)
    except OSError:
        return False
    return True
