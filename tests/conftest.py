"""Test fixtures shared by every test file.

The suite runs against a real Cassandra node: the project's local node (started here
if it is not running) unless CASSANDRA_HOSTS points elsewhere. Django's test database
set-up creates the test keyspace ``test_<CASSANDRA_KEYSPACE>`` and syncs the tables
into it; ``cassandra_db`` truncates them before each test that uses it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    if not os.environ.get("CASSANDRA_HOSTS"):
        from devtools import cassandra_node

        cassandra_node.start(1)


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    shutil.rmtree(settings.TEST_DIR, ignore_errors=True)
    settings.TEST_DIR.mkdir(parents=True)
    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=0, interactive=False, aliases={"default", "cassandra"}, serialized_aliases=set()
        )
    yield
    with django_db_blocker.unblock():
        teardown_databases(config, verbosity=0)


@pytest.fixture
def cassandra_db(django_db_setup):
    """A clean test keyspace: every table truncated before the test."""
    from django.db import connections

    from jobs import cassandra

    conn = connections["cassandra"]
    keyspace = conn.settings_dict["NAME"]
    assert keyspace.startswith("test_"), keyspace
    tables = {m.__table_name__ for models in conn.introspection.cql_models.values() for m in models}
    assert "job" in tables, tables
    for table in sorted(tables):
        cassandra.execute(f"TRUNCATE {keyspace}.{table}", timeout=30)
    yield keyspace


@pytest.fixture
def worker_env(django_db_setup):
    """Environment for a subprocess that must see the test databases (worker, web)."""
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=f"sqlite:///{settings.DATABASES['default']['NAME']}",
        CASSANDRA_KEYSPACE=settings.DATABASES["cassandra"]["NAME"],
        PYTHONUNBUFFERED="1",
    )
    return env


def _start_worker(env: dict, log_dir) -> subprocess.Popen:
    from django.conf import settings

    log_path = Path(log_dir) / f"worker-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg reaches Chromium too
        )
    proc.log_path = log_path
    return proc


def stop_worker(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def start_worker(worker_env, cassandra_db):
    """Start real django-q2 clusters (manage.py qcluster) against the test databases.

    ``start_worker(EMAIL_PORT="2525", ...)`` adds environment variables. Tests using it
    need `@pytest.mark.django_db(transaction=True, databases="__all__")`: the worker only
    sees committed rows, and django-q2 touches every connection.
    """
    from django.conf import settings

    started: list[subprocess.Popen] = []

    def start(**extra: str) -> subprocess.Popen:
        proc = _start_worker({**worker_env, **extra}, settings.TEST_DIR)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_worker(proc)


@pytest.fixture
def worker(start_worker):
    """One worker with the default test environment."""
    return start_worker()
