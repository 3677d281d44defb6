"""Small helpers around the Cassandra connection that django-cassandra-engine owns."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from cassandra.cqlengine import connection as cql_connection
from cassandra.query import BatchStatement, BatchType, PreparedStatement

ALIAS = "cassandra"

_prepared: dict[tuple[int, str], PreparedStatement] = {}
_prepared_lock = threading.Lock()


def session():
    """This process's driver session (connected on first use).

    Connects lazily and, after a failure, reconnects on the next call (the
    ``lazy_connect``/``retry_connect`` options), so a node that was down is used again
    as soon as it is back.
    """
    from django.db import connections

    connections[ALIAS].connect()  # registers the cqlengine connection on first use (no-op after)
    conn = cql_connection.get_connection(ALIAS)
    conn.handle_lazy_connect()
    return conn.session


def execute(statement: str, params: tuple | dict | None = None, timeout: float | None = None):
    """Run one CQL statement on the project's Cassandra connection."""
    return session().execute(statement, params, timeout=timeout)


def prepared(cql: str) -> PreparedStatement:
    """``cql`` prepared once per session: the node parses it once, and each use sends
    only the bound values (the hot write paths use this instead of cqlengine)."""
    current = session()
    key = (id(current), cql)
    statement = _prepared.get(key)
    if statement is None:
        with _prepared_lock:
            statement = _prepared.get(key)
            if statement is None:
                statement = _prepared[key] = current.prepare(cql)
    return statement


def write_together(statements: Sequence[tuple[str, Sequence[object]]], timeout: float | None = None) -> None:
    """Apply several prepared writes as one logged batch: all of them or none."""
    if len(statements) == 1:
        cql, values = statements[0]
        session().execute(prepared(cql), values, timeout=timeout)
        return
    batch = BatchStatement(batch_type=BatchType.LOGGED)
    for cql, values in statements:
        batch.add(prepared(cql), values)
    session().execute(batch, timeout=timeout)


def ping(timeout: float = 2.0) -> str:
    """Return the node's release version, or raise if Cassandra does not answer."""
    row = execute("SELECT release_version FROM system.local", timeout=timeout).one()
    return row["release_version"] if isinstance(row, dict) else row.release_version


def reset_after_fork() -> None:
    """Forget the parent's Cassandra session in a forked child (django-q2 workers).

    A driver session does not survive fork: its I/O thread stays in the parent and
    the child would wait forever. The next query in the child connects afresh.
    """
    import threading

    for conn in list(cql_connection._connections.values()):
        if conn.session is not None or conn.cluster is not None:
            conn.cluster = None
            conn.session = None
            conn.lazy_connect = True
            conn.lazy_connect_lock = threading.RLock()
    cql_connection.cluster = None
    cql_connection.session = None
    _prepared.clear()


def ensure_session(**_signal_kwargs: object) -> None:
    """Make sure this process's Cassandra session exists before a request uses it.

    cqlengine's lazy connect has a race: while one thread is still connecting, another
    sees "already connected" and fails with "It is required to setup() cqlengine".
    Connected on ``request_started``; threads wait here for the one that connects.
    """
    try:
        conn = cql_connection.get_connection(ALIAS)
    except Exception:
        return  # not registered yet: the first query registers and connects it
    if conn.session is not None:
        return
    try:
        conn.handle_lazy_connect()
    except Exception:  # the node is down: the view's own query reports it
        return
    if conn.session is None:
        with conn.lazy_connect_lock:  # another thread is connecting: wait for it
            pass
