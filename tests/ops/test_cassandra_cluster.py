"""``cassandra_node start --nodes 2`` makes one real two-node cluster on loopback.

Runs on its own data folder (a temporary directory) and two free ports of its own
(tests/suite_node.free_ports), beside the suite's node and any other clone's, and stops
both nodes at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pytest
from cassandra import ConsistencyLevel
from cassandra.cluster import Cluster
from cassandra.io.asyncioreactor import AsyncioConnection
from cassandra.query import SimpleStatement

from devtools.cassandra_node import Node
from tests.paths import REPO
from tests.suite_node import free_ports


@pytest.fixture
def two_nodes(tmp_path):
    native, storage = free_ports(2, addresses=("127.0.0.1", "127.0.0.2"))
    root = tmp_path / "cluster"
    env = dict(
        os.environ,
        IMAGEDL_CASSANDRA_DATA=str(root),
        CASSANDRA_PORT=str(native),
        IMAGEDL_CASSANDRA_STORAGE_PORT=str(storage),
    )
    env.pop("CASSANDRA_HOSTS", None)

    def node_command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "devtools.cassandra_node", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    try:
        started = node_command("start", "--nodes", "2")
        assert started.returncode == 0, started.stderr
        yield native, started.stdout.strip().splitlines()[-1].split(",")
    finally:
        # Their data is thrown away: killed, not drained (a clean stop takes seconds a node).
        for index in (1, 2):
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(Node(index, root=root).pid(), signal.SIGKILL)
        node_command("stop")


def _session(address: str, port: int):
    cluster = Cluster([address], port=port, connection_class=AsyncioConnection, protocol_version=4)
    return cluster, cluster.connect()


def test_two_nodes_form_one_cluster_that_replicates(two_nodes):
    port, addresses = two_nodes
    assert addresses == ["127.0.0.1", "127.0.0.2"]
    cluster, session = _session("127.0.0.1", port)
    try:
        assert sorted(host.address for host in cluster.metadata.all_hosts()) == addresses
        assert all(host.is_up for host in cluster.metadata.all_hosts())
        session.execute(
            "CREATE KEYSPACE pair WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}"
        )
        session.execute("CREATE TABLE pair.t (k int PRIMARY KEY, v text)")
        session.execute(
            SimpleStatement("INSERT INTO pair.t (k, v) VALUES (1, 'written via node 1')"),
            timeout=30,
        )
    finally:
        cluster.shutdown()
    # Read back through the other node, asking every replica: both hold the row.
    cluster, session = _session("127.0.0.2", port)
    try:
        row = session.execute(
            SimpleStatement("SELECT v FROM pair.t WHERE k = 1", consistency_level=ConsistencyLevel.ALL),
            timeout=30,
        ).one()
        assert row.v == "written via node 1"
    finally:
        cluster.shutdown()
