"""The project's own Cassandra node starts, answers, survives a crash, and /healthz tells.

These tests kill and restart the local node, so they only run when the suite uses it
(CASSANDRA_HOSTS unset).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devtools import cassandra_node
from tests.waiting import wait_for

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("CASSANDRA_HOSTS")), reason="uses the project's local node"
)


def test_node_answers_cql_and_start_is_idempotent():
    node = cassandra_node.Node(1)
    pid = node.pid()
    assert pid is not None
    assert cassandra_node.answers_cql("127.0.0.1")
    assert cassandra_node.start(1) == ["127.0.0.1"]
    assert node.pid() == pid  # a running node is left alone
    config = (node.home / "conf" / "cassandra.yaml").read_text()
    assert "listen_address: 127.0.0.1" in config


def test_nothing_answers_where_no_node_runs():
    assert not cassandra_node.answers_cql("127.0.0.1", port=1, timeout=0.5)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_healthz_reports_a_dead_node_and_recovers(client, worker, cassandra_db):
    # The worker must have reported in before everything is healthy.
    healthy = wait_for(lambda: client.get("/healthz").status_code == 200, timeout=60)
    assert healthy, client.get("/healthz").json()

    node = cassandra_node.Node(1)
    old_pid = node.pid()
    os.kill(old_pid, signal.SIGKILL)  # a crash, not a clean stop
    wait_for(lambda: node.pid() is None, timeout=20, interval=0.1)

    down = client.get("/healthz")
    assert down.status_code == 503
    body = down.json()
    assert body["ok"] is False
    assert body["components"]["cassandra"]["ok"] is False
    assert body["components"]["database"]["ok"] is True

    # Starting again restarts the crashed node (commit log replay) and the app reconnects.
    cassandra_node.start(1)
    assert node.pid() not in (None, old_pid)
    recovered = wait_for(lambda: client.get("/healthz").status_code == 200, timeout=60)
    assert recovered, client.get("/healthz").json()
    assert client.get("/healthz").json()["components"]["cassandra"]["release_version"].startswith("5.0")


def test_a_node_started_by_another_checkout_is_used_not_duplicated(tmp_path):
    # Another data folder (as from a second clone) with the suite's node answering on
    # 127.0.0.1:9042: start uses that node and launches no JVM of its own.
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, IMAGEDL_CASSANDRA_DATA=str(tmp_path / "other-clone"))
    result = subprocess.run(
        [sys.executable, "-m", "devtools.cassandra_node", "start"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "127.0.0.1"
    assert "already answers on 127.0.0.1; using it" in result.stderr
    assert not (tmp_path / "other-clone" / "node1" / "cassandra.pid").exists()
