"""The project's own Cassandra node starts, answers, survives a crash, and /healthz tells.

These tests run on the suite's own node (tests/suite_node.py) and kill and restart only
that one, so they only run when the suite has one (CASSANDRA_HOSTS unset). The node
``make run`` uses (127.0.0.1:9042, this clone's or another's) is never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from devtools import cassandra_node
from tests import suite_node
from tests.paths import REPO
from tests.waiting import wait_for

pytestmark = pytest.mark.skipif(not suite_node.own_node(), reason="uses the suite's own local node")


def test_the_suite_runs_on_a_node_of_its_own():
    from django.conf import settings

    node = suite_node.node()
    assert node.home == suite_node.data_dir() / "node1" == cassandra_node.Node(1).home
    assert settings.CASSANDRA_PORT == suite_node.port() != 9042
    assert settings.DATABASES["cassandra"]["OPTIONS"]["connection"]["port"] == suite_node.port()
    config = (node.home / "conf" / "cassandra.yaml").read_text()
    assert f"native_transport_port: {suite_node.port()}" in config
    assert "storage_port: 7010" not in config


def test_node_answers_cql_and_start_is_idempotent():
    node = suite_node.node()
    pid = node.pid()
    assert pid is not None
    assert cassandra_node.answers_cql("127.0.0.1")  # on the suite's port
    assert cassandra_node.start(1) == ["127.0.0.1"]
    assert node.pid() == pid  # a running node is left alone
    config = (node.home / "conf" / "cassandra.yaml").read_text()
    assert "listen_address: 127.0.0.1" in config


def test_nothing_answers_where_no_node_runs():
    assert not cassandra_node.answers_cql("127.0.0.1", port=1, timeout=0.5)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_healthz_reports_a_dead_node_and_recovers(client, worker, cassandra_db, suite_cassandra):
    # The worker must have reported in before everything is healthy.
    healthy = wait_for(lambda: client.get("/healthz").status_code == 200, timeout=60)
    assert healthy, client.get("/healthz").json()

    node = suite_cassandra
    old_pid = node.pid()
    assert old_pid is not None
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
    # Another data folder (as from a second clone) on the port where the suite's node
    # answers: to that folder the suite's node is another checkout's, so start uses it
    # and launches no JVM of its own.
    root = REPO
    env = dict(os.environ, IMAGEDL_CASSANDRA_DATA=str(tmp_path / "other-clone"))
    assert env["CASSANDRA_PORT"] == str(suite_node.port())
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
    assert f"already answers on 127.0.0.1:{suite_node.port()}; using it" in result.stderr
    assert not (tmp_path / "other-clone" / "node1" / "cassandra.pid").exists()
