"""The suite's session hooks; the fixtures live in tests/fixtures/ by kind:

  servers   ``suite_cassandra``, ``django_db_setup``, ``cassandra_db``, ``start_worker``,
            ``worker``, ``start_web``, ``postgres_server``, ``redis_server``, ``s3_server``, ``s3_settings``
  hosts     ``start_image_host``, ``image_host``, ``image_hosts``, ``start_imitation``,
            ``imitation`` (and ``allow_address``)
  mail      ``mailserver``
  browser   ``driver`` (and ``kept_browser_quit``)
  api       ``api_keys``, ``start_receiver``

The session starts the suite's own Cassandra node (tests/suite_node.py) and stops it at
the end. Jobs are made with tests/factories.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from tests import suite_node

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.hosts",
    "tests.fixtures.mail",
    "tests.fixtures.browser",
    "tests.fixtures.api",
]


def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "image_hosts(count=3, latency=0.02): what the image_hosts fixture starts",
        "imitation(**options): start_imitation options for the imitation fixture",
        "screenshots: takes the README's screenshots (make screenshots refreshes docs/screenshots/)",
    ):
        config.addinivalue_line("markers", line)


def pytest_sessionstart(session: pytest.Session) -> None:
    _stop_workers_left_behind()
    if suite_node.own_node():
        suite_node.start()


def _stop_workers_left_behind() -> None:
    """Kill worker processes an earlier session of this clone left running (a session
    killed outright never stops them): they would take this session's tasks, and they
    hold the test database the session is about to delete."""
    from django.conf import settings

    marker = f"DATABASE_URL=sqlite:///{settings.TEST_DIR / 'test.sqlite3'}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


@pytest.hookimpl(trylast=True)  # after the session's fixtures (the test keyspace) are torn down
def pytest_sessionfinish(session: pytest.Session) -> None:
    if suite_node.own_node() and not os.environ.get("IMAGEDL_TEST_KEEP_NODE"):
        _close_cassandra_sessions()
        suite_node.stop()


def _close_cassandra_sessions() -> None:
    """Shut this process's driver sessions down before their node stops (else they keep
    trying to reconnect while the interpreter exits)."""
    from cassandra.cqlengine import connection

    for name in list(connection._connections):
        with contextlib.suppress(Exception):
            connection.unregister_connection(name)
