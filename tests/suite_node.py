"""The test suite's own Cassandra node, never the one ``make run`` uses.

Unless CASSANDRA_HOSTS is set, a test session runs on a single local node of its own:
data, config and logs in ``var/test-cassandra/`` of this clone
(``IMAGEDL_TEST_CASSANDRA_DATA`` moves it), listening on 127.0.0.1 on two ports chosen
here (native protocol and storage; JMX stays off). Another clone's node on 9042, or
this clone's ``make run`` node, is never started, stopped or written to.

The ports must be known before Django reads its settings (pytest-django imports them
before any conftest hook runs), so ``tests/settings.py`` calls
``configure_environment()`` first thing. It exports the choice in ``os.environ``
(``IMAGEDL_CASSANDRA_DATA``, ``CASSANDRA_PORT``, ``IMAGEDL_CASSANDRA_STORAGE_PORT``,
which the project's settings and ``devtools.cassandra_node`` read), so every process
the suite starts (workers, ``manage.py``, ``python -m devtools.cassandra_node``)
inherits it; in those processes ``IMAGEDL_TEST_NODE`` says the choice is made.

Ports: the ones the node used last time, when they are still free (or the node still
runs); otherwise two free ones picked at random in 20000-32767, below Linux's range of
ephemeral ports, so an outgoing connection cannot take one between the choice and the
node's start. ``conftest.py`` starts the node when the session starts (reusing it when
it already runs, e.g. after a session that was killed) and stops it when the session
ends, unless ``IMAGEDL_TEST_KEEP_NODE=1`` keeps it for the next run.
"""

from __future__ import annotations

import os
import random
import re
import socket
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = "IMAGEDL_TEST_NODE"
PORT_RANGE = (20000, 32767)  # below /proc/sys/net/ipv4/ip_local_port_range


def data_dir() -> Path:
    """The suite node's data folder (its node1/ holds data, config and logs)."""
    return Path(os.environ.get("IMAGEDL_TEST_CASSANDRA_DATA") or ROOT / "var" / "test-cassandra")


def own_node() -> bool:
    """True when the suite runs on a node of its own (CASSANDRA_HOSTS unset)."""
    return not os.environ.get("CASSANDRA_HOSTS")


def port_is_free(port: int, addresses: Iterable[str] = ("127.0.0.1",)) -> bool:
    """True if nothing is bound to ``port`` on any of ``addresses``."""
    for address in addresses:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((address, port))
            except OSError:
                return False
    return True


def free_ports(count: int, addresses: Iterable[str] = ("127.0.0.1",)) -> list[int]:
    """``count`` distinct ports free on every one of ``addresses``."""
    addresses = tuple(addresses)
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randint(*PORT_RANGE)
        if port not in chosen and port_is_free(port, addresses):
            chosen.append(port)
    return chosen


def _configured_ports(home: Path) -> tuple[int, int] | None:
    """(native, storage) from the node's last cassandra.yaml, if it has one."""
    try:
        text = (home / "conf" / "cassandra.yaml").read_text()
    except OSError:
        return None
    native = re.search(r"^native_transport_port: (\d+)$", text, re.MULTILINE)
    storage = re.search(r"^storage_port: (\d+)$", text, re.MULTILINE)
    if not native or not storage:
        return None
    return int(native.group(1)), int(storage.group(1))


def _choose_ports() -> tuple[int, int]:
    from devtools.cassandra_node import Node

    node = Node(1, root=data_dir())
    previous = _configured_ports(node.home)
    if previous is not None and (node.pid() is not None or all(port_is_free(p) for p in previous)):
        return previous
    native, storage = free_ports(2)
    return native, storage


def configure_environment() -> None:
    """Choose the suite node's folder and ports and export them (see the module's
    docstring); a no-op with CASSANDRA_HOSTS set or in a process the suite started."""
    if not own_node() or os.environ.get(MARK) == str(data_dir()):
        return
    native, storage = _choose_ports()
    os.environ.update(
        {
            "IMAGEDL_CASSANDRA_DATA": str(data_dir()),
            "CASSANDRA_PORT": str(native),
            "IMAGEDL_CASSANDRA_STORAGE_PORT": str(storage),
            MARK: str(data_dir()),
        }
    )


def port() -> int:
    """The native port the suite's Cassandra listens on."""
    return int(os.environ["CASSANDRA_PORT"])


def node():
    """The suite's node (a ``devtools.cassandra_node.Node``)."""
    from devtools.cassandra_node import Node

    assert os.environ.get(MARK) == str(data_dir()), "configure_environment() has not run"
    return Node(1, root=data_dir())


def start() -> None:
    """Start the suite's node (a no-op when it runs) and wait until it answers CQL."""
    from devtools import cassandra_node

    home = node().home
    started = cassandra_node.start(1)
    assert started == ["127.0.0.1"], started
    cassandra_node.log(f"the test suite's node: 127.0.0.1:{port()} (data in {home})")


def stop() -> None:
    """Stop the suite's node (SIGTERM, as ``cassandra_node stop``)."""
    node().stop()


def wait_until_this_process_reconnects(timeout: float = 90) -> None:
    """Wait until this process's own Cassandra session answers again (the driver
    reconnects by itself, at most 10 s apart)."""
    from jobs.store import cassandra

    deadline = time.monotonic() + timeout
    while True:
        try:
            cassandra.ping(timeout=3)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def ensure_up() -> None:
    """After a test stopped or killed the node: start it again if it is down, wait
    until it answers, and until this process's session does."""
    start()
    wait_until_this_process_reconnects()
