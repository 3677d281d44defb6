"""Every request a process sends to Cassandra is counted by kind
(``imagedl_cassandra_statements``): what the capacity model and bench_scale read."""

from __future__ import annotations

import uuid

import pytest
from cassandra.query import BatchStatement, BatchType
from prometheus_client import REGISTRY

from jobs.lib.metrics import statement_kind
from jobs.models import Job
from jobs.store import cassandra

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
KINDS = ("read", "write", "batch", "lwt", "schema")


def counts() -> dict[str, float]:
    return {
        kind: REGISTRY.get_sample_value("imagedl_cassandra_statements_total", {"kind": kind}) or 0.0
        for kind in KINDS
    }


@pytest.mark.parametrize(
    ("cql", "kind"),
    [
        ("SELECT id FROM job WHERE id = ?", "read"),
        ("  select count(*) from job", "read"),
        ("INSERT INTO job (id) VALUES (?)", "write"),
        ("INSERT INTO job (id) VALUES (?) IF NOT EXISTS", "lwt"),
        ("UPDATE job SET status = ? WHERE id = ? IF run_id = ?", "lwt"),
        ("UPDATE job SET status = ? WHERE id = ?", "write"),
        ("DELETE FROM job WHERE id = ? IF EXISTS", "lwt"),
        ("DELETE FROM job WHERE id = ?", "write"),
        ("CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY)", "schema"),
        ("TRUNCATE job", "schema"),
        ("UPDATE job SET notified = ? WHERE id = ?", "write"),  # "IF" inside a word is no condition
    ],
)
def test_a_statement_is_classified_by_what_it_does(cql, kind):
    assert statement_kind(cql) == kind


def test_each_request_to_the_node_is_counted_once_by_kind():
    job_id, job = uuid.uuid4(), Job.column_family_name()  # keyspace.job
    cassandra.session()  # the listener is on this process's session from here on
    before = counts()

    cassandra.execute(cassandra.prepared(f"SELECT id FROM {job} WHERE id = ?"), (job_id,))
    cassandra.execute(f"UPDATE {job} SET query = 'x' WHERE id = %s", (job_id,))
    cassandra.update_if(job, job_id, {"query": "y"}, [("query = ?", ("x",))])
    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
    batch.add(cassandra.prepared(f"UPDATE {job} SET query = ? WHERE id = ?"), ("z", job_id))
    batch.add(cassandra.prepared(f"UPDATE {job} SET email = ? WHERE id = ?"), ("a@example.org", job_id))
    cassandra.session().execute(batch)
    list(Job.objects.filter(id=job_id))  # cqlengine's queries go through the same session

    after = counts()
    rose = {kind: after[kind] - before[kind] for kind in KINDS}
    assert rose == {"read": 2, "write": 1, "batch": 1, "lwt": 1, "schema": 0}
