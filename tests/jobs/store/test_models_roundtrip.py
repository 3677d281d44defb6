"""Job rows written through the models come back intact, from the models and the driver."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from jobs.models import JobImage, JobStatus
from jobs.store import cassandra, records
from tests.factories import make_job_record


@pytest.fixture
def job(cassandra_db):
    return make_job_record(
        email="ada@example.org",
        query="red fox",
        requested_count=120,
        run_at=dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC),
        time_zone="Europe/Berlin",
        formats={"jpeg", "png"},
        min_width=640,
        min_height=480,
    )


def test_job_reads_back_through_models(job):
    loaded = records.job_get(job.id)
    assert loaded is not None
    assert loaded.email == "ada@example.org"
    assert loaded.query == "red fox"
    assert loaded.requested_count == 120
    assert loaded.formats == {"jpeg", "png"}
    assert (loaded.min_width, loaded.min_height) == (640, 480)
    assert loaded.status == JobStatus.SCHEDULED
    assert loaded.run_at == dt.datetime(2026, 12, 1, 9, 30)  # naive UTC from Cassandra
    assert loaded.time_zone == "Europe/Berlin"


def test_job_reads_back_with_the_driver(job, cassandra_db):
    row = cassandra.execute(
        f"SELECT email, query, requested_count, status FROM {cassandra_db}.job WHERE id = %s", (job.id,)
    ).one()
    assert row["email"] == "ada@example.org"
    assert row["query"] == "red fox"
    assert row["requested_count"] == 120
    assert row["status"] == "scheduled"


def test_personal_cells_carry_a_ttl_and_others_do_not(job, cassandra_db, settings):
    row = cassandra.execute(
        f"SELECT TTL(email) AS t_email, TTL(query) AS t_query, TTL(requested_count) AS t_count "
        f"FROM {cassandra_db}.job WHERE id = %s",
        (job.id,),
    ).one()
    limit = settings.IMAGEDL_PERSONAL_TTL_DAYS * 86400
    assert 0 < row["t_email"] <= limit
    assert 0 < row["t_query"] <= limit
    assert row["t_count"] is None


def test_status_change_reaches_the_listing_row(job):
    assert records.job_status_change(job, JobStatus.RUNNING, only_from=JobStatus.ACTIVE, attempts=1)
    assert records.job_get(job.id).status == JobStatus.RUNNING
    page = records.jobs_list_newest_first(10, status=JobStatus.RUNNING)
    assert [j.id for j in page.jobs] == [job.id]
    assert records.jobs_list_newest_first(10, status=JobStatus.SCHEDULED).jobs == []


def test_a_status_change_from_the_wrong_state_is_refused_and_reported(job):
    assert records.job_status_change(job, JobStatus.CANCELLED, only_from=JobStatus.ACTIVE)
    stale = records.job_get(job.id)
    stale.status = JobStatus.RUNNING  # what a run that read the job earlier believes
    assert not records.job_status_change(
        stale, JobStatus.DONE, only_from=(JobStatus.RUNNING,), archive_bytes=5
    )
    assert stale.status == JobStatus.CANCELLED  # refreshed to what stands
    again = records.job_get(job.id)
    assert again.status == JobStatus.CANCELLED and not again.archive_bytes
    with pytest.raises(ValueError):
        records.job_update(again, status=JobStatus.DONE)


def test_images_come_back_in_position_order(job):
    run, other = uuid.uuid4(), uuid.uuid4()
    for position in (3, 1, 2):
        for run_id in (run, other):
            JobImage.create(
                job_id=job.id,
                run_id=run_id,
                position=position,
                file_name=f"red-fox_{position:04d}.jpg",
                bytes=100 * position,
            )
    images = records.job_images(job.id, run_id=run)
    assert [i.position for i in images] == [1, 2, 3] and {i.run_id for i in images} == {run}
    assert records.job_images(job.id) == []  # the job names no run yet


def test_get_job_with_garbage_id_is_none(cassandra_db):
    assert records.job_get("not-a-uuid") is None


def test_a_jobs_events_are_read_by_its_id_as_text_too(cassandra_db):
    """Task arguments carry ids as text: the prepared read takes them as cqlengine did."""
    from jobs.store.events import event_record, job_events
    from tests.factories import NOW, make_job_record

    job = make_job_record(run_in=NOW)
    event_record(job.id, "note", "a step")
    assert [e.kind for e in job_events(str(job.id))] == [e.kind for e in job_events(job.id)] != []
    assert job_events("not an id") == []
