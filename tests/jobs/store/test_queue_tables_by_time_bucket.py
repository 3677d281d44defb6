"""The queue tables (job_active, mail_pending, job_purge_due) are partitioned by the
five minutes their rows fall due in, with tombstones kept an hour; passes read those
buckets from a watermark, and rows written before (partition ``all``) are still handled. sync_cassandra
brings an existing keyspace along (new columns, the new table, the tables' options)."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pytest
from django.core.management import call_command
from django.db import connections

from jobs.core import services
from jobs.core.reaper import jobs_reap
from jobs.mail import outbox
from jobs.models import JobActive, JobPurgeDue, MailPending, QueueMark
from jobs.store import cassandra, records
from jobs.store.queues import bucket_of
from tests.factories import NOW, make_done_job, make_job

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
QUEUES = ("job_active", "mail_pending", "job_purge_due")


def buckets(model, job_id) -> list[str]:
    return [row.bucket for row in model.objects.all() if row.job_id == job_id]


def test_rows_go_in_the_bucket_they_fall_due_in(cassandra_db):
    later = make_job(run_in=dt.timedelta(hours=5))
    now_job = make_job(run_in=NOW)
    assert buckets(JobActive, later.id) == [bucket_of(later.run_at)]
    assert buckets(JobActive, now_job.id) == [bucket_of(dt.datetime.now(dt.UTC))]
    assert buckets(MailPending, later.id) == [bucket_of(dt.datetime.now(dt.UTC))]
    done = make_done_job(images=1)
    assert buckets(JobPurgeDue, done.id) == [bucket_of(records.job_get(done.id).purge_due_at)]


def test_passes_start_at_their_watermark_and_keep_it_behind_the_present(cassandra_db):
    now = dt.datetime.now(dt.UTC)
    job = make_job(run_in=NOW)
    jobs_reap(now=now)
    services.jobs_purge_due(now=now)
    for queue in QUEUES:
        mark = QueueMark.objects.filter(queue=queue).first()
        assert mark is not None and mark.bucket <= bucket_of(now - dt.timedelta(hours=1)), queue
    # A row due long ago, written now, lands where the next pass reads.
    services.job_start_attempt(job)
    assert services.job_fail(job, "nothing")
    assert outbox.email_send(str(job.id), "failed", 1, 1) == "sent"
    assert services.jobs_purge_due(now=now + dt.timedelta(days=1)).jobs == 1


def test_rows_of_the_old_single_partition_are_still_handled(cassandra_db):
    job = make_job(run_in=NOW)
    services.job_cancel(job)
    JobActive.create(bucket="all", job_id=job.id)  # as an earlier version listed it
    assert jobs_reap().cleared == 1
    assert not buckets(JobActive, job.id)


def gc_grace(keyspace: str, table: str) -> int:
    row = cassandra.execute(
        "SELECT gc_grace_seconds FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
        (keyspace, table),
    ).one()
    return row["gc_grace_seconds"]


@pytest.fixture
def keyspace_of_an_earlier_version(cassandra_db):
    """A keyspace synced, then taken back to the tables of the single-partition queues."""
    settings_dict = connections["cassandra"].settings_dict
    real_name = settings_dict["NAME"]
    name = f"sync_{uuid.uuid4().hex[:12]}"
    settings_dict["NAME"] = name
    try:
        call_command("sync_cassandra", database="cassandra", stdout=io.StringIO())
        for table in QUEUES:
            cassandra.execute(f"ALTER TABLE {name}.{table} WITH gc_grace_seconds = 864000", timeout=60)
        cassandra.execute(f"ALTER TABLE {name}.job DROP active_bucket", timeout=60)
        cassandra.execute(f"ALTER TABLE {name}.job_mail DROP listed_in", timeout=60)
        cassandra.execute(f"DROP TABLE {name}.queue_mark", timeout=60)
        yield name
    finally:
        settings_dict["NAME"] = real_name
        cassandra.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)


def test_sync_cassandra_brings_an_existing_keyspace_along(keyspace_of_an_earlier_version):
    name = keyspace_of_an_earlier_version
    call_command("sync_cassandra", database="cassandra", stdout=io.StringIO())
    assert [gc_grace(name, table) for table in QUEUES] == [3600] * 3
    columns = {
        (row["table_name"], row["column_name"])
        for row in cassandra.execute(
            "SELECT table_name, column_name FROM system_schema.columns WHERE keyspace_name = %s", (name,)
        )
    }
    assert {("job", "active_bucket"), ("job_mail", "listed_in"), ("queue_mark", "bucket")} <= columns
