"""Count the CQL statements a piece of code sends, by kind and table.

``StatementCount`` registers a request listener on this process's driver session
(``Session.add_request_init_listener``): every request the driver sends from any
thread of the process (cqlengine's, the prepared writes', the lease keeper's) is
counted once, as a plain read, a plain write, a lightweight transaction (a write with
``IF``) or a batch (with the tables of its statements). Used by tests that bound what a
run writes and by ``bench/statements.py``, which prints the table.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator

READ, WRITE, LWT, BATCH = "read", "write", "lwt", "batch"
KINDS = (READ, WRITE, LWT, BATCH)

_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+((?:"?\w+"?\.)?"?(\w+)"?)', re.IGNORECASE)


def statement_kind(cql: str) -> tuple[str, str]:
    """(kind, table) of one CQL statement: its kind as the servers count it
    (``jobs.lib.metrics.statement_kind``: read, write, lwt or schema) and its table."""
    from jobs.lib.metrics import statement_kind as kind_of

    match = _TABLE.search(cql)
    return kind_of(cql), match.group(2) if match else "?"


class StatementCount:
    """``with StatementCount() as count: ...`` then ``count.by_kind()``,
    ``count.kinds[(kind, table)]`` or ``count.batches``. Counts the requests of this
    process's session while the block runs (including other threads')."""

    def __init__(self) -> None:
        self.kinds: Counter[tuple[str, str]] = Counter()
        self.batches: Counter[tuple[str, tuple[str, ...]]] = Counter()  # (type, tables) -> n
        self.batched: Counter[str] = Counter()  # table -> statements sent inside batches
        self._lock = threading.Lock()
        self._session = None

    def __enter__(self) -> StatementCount:
        from jobs.store.cassandra import session

        self._session = session()
        self._session.add_request_init_listener(self._heard)
        return self

    def __exit__(self, *exc: object) -> None:
        self._session.remove_request_init_listener(self._heard)

    def _heard(self, response_future) -> None:
        statement = response_future.query
        with self._lock:
            if hasattr(statement, "batch_type"):
                tables = tuple(table for _, table in self._batch_parts(statement))
                self.batches[(statement.batch_type.name.lower(), tuple(sorted(set(tables))))] += 1
                self.kinds[(BATCH, ",".join(sorted(set(tables))))] += 1
                self.batched.update(tables)
                return
            self.kinds[statement_kind(_cql_of(statement))] += 1

    def _batch_parts(self, batch) -> Iterator[tuple[str, str]]:
        known = self._session.cluster._prepared_statements
        for is_prepared, query, _values in batch._statements_and_parameters:
            if is_prepared:
                prepared = known.get(query)
                cql = prepared.query_string if prepared is not None else ""
            else:
                cql = query if isinstance(query, str) else _cql_of(query)
            yield statement_kind(cql)

    def by_kind(self) -> dict[str, int]:
        """How many requests of each kind (a batch counts once)."""
        totals = dict.fromkeys(KINDS, 0)
        for (kind, _table), n in self.kinds.items():
            totals[kind] += n
        return totals

    def of(self, kind: str, table: str) -> int:
        return self.kinds[(kind, table)]

    @property
    def total(self) -> int:
        return sum(self.kinds.values())

    def table(self) -> str:
        """The counts as a text table: kind, table, requests; then the batches."""
        lines = [f"{'kind':<6} {'table':<28} {'requests':>8}"]
        for (kind, table), n in sorted(
            self.kinds.items(), key=lambda item: (KINDS.index(item[0][0]), -item[1])
        ):
            lines.append(f"{kind:<6} {table:<28} {n:>8}")
        totals = self.by_kind()
        lines.append(
            "total  " + ", ".join(f"{kind} {totals[kind]}" for kind in KINDS) + f"; all {self.total}"
        )
        for (batch_type, tables), n in sorted(self.batches.items()):
            lines.append(f"  {n} {batch_type} batches of {'+'.join(tables)}")
        if self.batched:
            inside = ", ".join(f"{table} {n}" for table, n in self.batched.most_common())
            lines.append(f"  statements inside batches: {inside}")
        return "\n".join(lines)


def _cql_of(statement) -> str:
    prepared = getattr(statement, "prepared_statement", None)
    if prepared is not None:
        return prepared.query_string
    return str(getattr(statement, "query_string", statement))
