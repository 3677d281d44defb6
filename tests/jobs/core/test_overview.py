"""The jobs in hand for operators: counts by state, overdue jobs (past their time by
more than the reaper's grace, or running on an expired lease), the oldest waiting, and
one read of the tables per 15 s for everyone sharing the cache."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from jobs.core.overview import job_overdue, jobs_overview, jobs_overview_cached
from jobs.models import JobStatus
from jobs.store import records
from tests.factories import make_job_record

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])


def _running(job, lease_in: dt.timedelta):
    assert records.job_write_if(
        job, {"status": JobStatus.RUNNING, "lease_until": timezone.now() + lease_in}, run_is=None
    )
    return records.job_get(job.id)


def test_counts_overdue_and_the_oldest_waiting(cassandra_db, settings):
    settings.IMAGEDL_REAPER_GRACE_SECONDS = 120
    late = make_job_record(run_in=-dt.timedelta(minutes=20))
    due = make_job_record(run_in=-dt.timedelta(seconds=30))  # waiting, within the grace
    make_job_record(run_in=dt.timedelta(hours=2))  # later: not due, not read
    held = make_job_record(run_in=-dt.timedelta(minutes=40), held=True)
    alive = _running(make_job_record(run_in=-dt.timedelta(minutes=5)), dt.timedelta(minutes=1))
    dead = _running(make_job_record(run_in=-dt.timedelta(minutes=5)), -dt.timedelta(minutes=5))

    overview = jobs_overview()
    assert overview.counts == {"scheduled": 3, "running": 2}
    assert set(overview.overdue) == {str(late.id), str(dead.id)}
    assert overview.oldest_waiting == str(late.id)  # the held one waits for its owner, not for us
    assert 20 * 60 - 5 < overview.oldest_waiting_seconds < 20 * 60 + 60
    assert not job_overdue(due) and not job_overdue(held) and not job_overdue(alive)


def test_the_cached_overview_reads_the_tables_once_per_period(cassandra_db):
    assert jobs_overview_cached().counts["scheduled"] == 0
    make_job_record(run_in=-dt.timedelta(minutes=1))
    assert jobs_overview_cached().counts["scheduled"] == 0  # within 15 s: the cached read
    from django.core.cache import cache

    cache.clear()  # the period is over
    assert jobs_overview_cached().counts["scheduled"] == 1
