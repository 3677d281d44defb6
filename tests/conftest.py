"""Test fixtures shared by every test file.

The suite runs against a real Cassandra node: the project's local node (started here
if it is not running) unless CASSANDRA_HOSTS points elsewhere. Django's test database
set-up creates the test keyspace ``test_<CASSANDRA_KEYSPACE>`` and syncs the tables
into it; ``cassandra_db`` truncates them before each test that uses it.
"""

from __future__ import annotations

import os
import shutil

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
