"""Small helpers around the Cassandra connection that django-cassandra-engine owns."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from cassandra.cqlengine import connection as cql_connection
from cassandra.query import BatchStatement, BatchType, BoundStatement, PreparedStatement

from jobs.lib.metrics import cassandra_statement_count, statement_kind

ALIAS = "cassandra"
Writes = Sequence[tuple[str, Sequence[object]]]  # prepared CQL and its values, each

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
    statements_counted(conn.session)
    return conn.session


def statements_counted(current) -> None:
    """Count every request ``current`` (a driver session) sends, by kind
    (``imagedl_cassandra_statements``): cqlengine's queries as well as ours."""
    if current is None or getattr(current, "_imagedl_counted", False):
        return
    current._imagedl_counted = True
    current.add_request_init_listener(_statement_sent)


def _statement_sent(response_future) -> None:
    query = response_future.query
    if isinstance(query, BatchStatement):
        cassandra_statement_count("batch")
        return
    if isinstance(query, BoundStatement):
        text = query.prepared_statement.query_string
    else:
        text = getattr(query, "query_string", query)
    cassandra_statement_count(statement_kind(str(text)))


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


def model_select(model: type, where: str, values: Sequence[object]) -> list:
    """``SELECT`` the model's columns ``WHERE where`` (CQL with ``?``, from code, never
    from users) as a prepared statement, each row made into a model instance as
    cqlengine's own queries make them. For the hot reads (a job, its events): a
    cqlengine query sends its values inside a new CQL text every time, which the node
    parses every time."""
    columns = ", ".join(f'"{column.db_field_name}"' for column in model._columns.values())
    cql = f"SELECT {columns} FROM {model.column_family_name()} WHERE {where}"  # noqa: S608
    return [model._construct_instance(row) for row in execute(prepared(cql), tuple(values))]


def update_if(
    table: str, key: object, changes: dict[str, object], conditions: Sequence[tuple[str, Sequence[object]]]
):
    """``UPDATE table SET changes WHERE id = key IF conditions``: a lightweight
    transaction. ``conditions`` are CQL clauses with ``?`` and their values, e.g.
    ``("status IN (?, ?)", ("a", "b"))``; names and clauses come from code, never from
    users. The result says ``was_applied`` (and, when not, the row's current values)."""
    if not conditions:
        raise ValueError("a conditional write needs a condition")
    assignments = ", ".join(f"{name} = ?" for name in changes)
    clauses = " AND ".join(clause for clause, _ in conditions)
    cql = f"UPDATE {table} SET {assignments} WHERE id = ? IF {clauses}"  # noqa: S608
    values = (*changes.values(), key, *(value for _, values in conditions for value in values))
    return execute(prepared(cql), values)


def write_together(statements: Writes, timeout: float | None = None) -> None:
    """Apply several prepared writes as one logged batch: all of them or none."""
    _write_batch(statements, BatchType.LOGGED, timeout)


def write_partition(statements: Writes, timeout: float | None = None) -> None:
    """Apply several prepared writes to one partition as one unlogged batch: one request,
    applied by each replica as one mutation (all of it or none). The caller makes sure
    every statement has the same partition key: across partitions an unlogged batch is
    neither atomic nor cheaper than separate writes."""
    _write_batch(statements, BatchType.UNLOGGED, timeout)


def _write_batch(statements: Writes, kind: BatchType, timeout: float | None) -> None:
    """One request: a lone statement as itself, several as a batch of ``kind``."""
    if not statements:
        return
    if len(statements) == 1:
        cql, values = statements[0]
        session().execute(prepared(cql), values, timeout=timeout)
        return
    batch = BatchStatement(batch_type=kind)
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
        statements_counted(conn.session)
        return
    try:
        conn.handle_lazy_connect()
    except Exception:  # the node is down: the view's own query reports it
        return
    if conn.session is None:
        with conn.lazy_connect_lock:  # another thread is connecting: wait for it
            pass
    statements_counted(conn.session)


# --- keyspace replication (manage.py sync_cassandra) ----------------------------------------
#
# ``SimpleStrategy:N`` has always made the keyspace the driver's way (cqlengine's
# create_keyspace_simple): NetworkTopologyStrategy with N replicas in every data centre.
# A keyspace meets it when it has N replicas everywhere (either class); it is altered
# to that form. ``NetworkTopologyStrategy:dc1=3,...`` must match data centre by centre.


def keyspace_replication(keyspace: str) -> dict[str, str] | None:
    """The keyspace's replication as Cassandra states it (short class name, factors as
    text), or None when the keyspace does not exist."""
    row = execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (keyspace,)
    ).one()
    if row is None:
        return None
    replication = dict(row["replication"] if isinstance(row, dict) else row.replication)
    strategy = str(replication.pop("class")).rsplit(".", 1)[-1]
    return {"class": strategy, **{str(k): str(v) for k, v in replication.items()}}


def _factors(replication: dict[str, str]) -> dict[str, int]:
    return {k: int(v) for k, v in replication.items() if k != "class" and str(v).isdigit()}


def _wanted_factors(current: dict[str, str], replication: dict[str, object]) -> dict[str, int]:
    """Replicas per data centre the setting asks for, in the terms of ``current``."""
    if replication.get("strategy_class", "SimpleStrategy") == "SimpleStrategy":
        factor = int(replication.get("replication_factor", 1))  # type: ignore[arg-type]
        return {name: factor for name in _factors(current)} or {"replication_factor": factor}
    return {str(k): int(v) for k, v in replication.items() if k != "strategy_class"}  # type: ignore[arg-type]


def align_replication(keyspace: str, replication: dict[str, object]) -> str:
    """Alter an existing keyspace whose replication differs from ``replication`` (a
    parsed CASSANDRA_REPLICATION). Returns what was done, in words for the operator (""
    when nothing changed or the keyspace does not exist). When a data centre gets more
    replicas, they hold nothing until a full repair runs: the words say so."""
    current = keyspace_replication(keyspace)
    if current is None:
        return ""
    before, after = _factors(current), _wanted_factors(current, replication)
    simple = replication.get("strategy_class", "SimpleStrategy") == "SimpleStrategy"
    if before == after and (simple or current["class"] == "NetworkTopologyStrategy"):
        return ""
    # Data centre by data centre: in an ALTER, NetworkTopologyStrategy's
    # replication_factor shorthand only fills in data centres not listed yet.
    options = {"class": "NetworkTopologyStrategy", **{k: str(v) for k, v in after.items()}}
    words = [keyspace, *options.keys(), *options.values()]
    if not all(word.replace("_", "").replace("-", "").isalnum() for word in words):
        raise ValueError(f"unexpected keyspace name or replication: {keyspace!r} {options!r}")
    cql_map = ", ".join(f"'{k}': '{v}'" for k, v in options.items())
    execute(f'ALTER KEYSPACE "{keyspace}" WITH replication = {{{cql_map}}}', timeout=60)
    now = keyspace_replication(keyspace) or options
    done = f"keyspace {keyspace}: replication {_describe(current)} -> {_describe(now)}"
    spread = before.get("replication_factor")
    if any(factor > before.get(name, spread or 0) for name, factor in _factors(now).items()):
        done += (
            "; the new replicas hold no data yet: run a full repair on every node "
            f"(nodetool repair -full {keyspace}) before relying on them"
        )
    return done


def _describe(replication: dict[str, str]) -> str:
    factors = ",".join(f"{k}={v}" for k, v in replication.items() if k != "class")
    return f"{replication['class']}:{factors}"
