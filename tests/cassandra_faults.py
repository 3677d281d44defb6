"""Faults of the Cassandra node, made in this process: the node answers some writes
with a timeout, as a node under load or going down does.

    writes_to_time_out(monkeypatch, "mail_pending")               # single writes to that table
    writes_to_time_out(monkeypatch, "mail_pending", batches=True)  # and every logged batch
"""

from __future__ import annotations

from cassandra import WriteTimeout
from cassandra.cluster import Session


def writes_to_time_out(monkeypatch, table: str, *, batches: bool = False) -> None:
    """The node answers every single write to ``table`` with a timeout; a logged batch
    goes through (the batch log makes it land whole), unless ``batches``."""
    execute = Session.execute

    def timing_out(self, query, *args, **kwargs):
        if batches and type(query).__name__ == "BatchStatement":
            raise WriteTimeout("Operation timed out writing a batch", write_type=0)
        text = getattr(query, "query_string", str(query))
        if text.lstrip().upper().startswith("INSERT") and f"{table}" in text:
            raise WriteTimeout(f"Operation timed out writing {table}", write_type=0)
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(Session, "execute", timing_out)
