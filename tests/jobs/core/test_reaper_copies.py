"""The reaper queues at most one copy of a late or expired job per grace period
(IMAGEDL_REAPER_GRACE_SECONDS), however often it runs: a backlog must not grow the
queue by backlog x passes."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django_q.models import OrmQ

from jobs.core import services
from jobs.core.reaper import jobs_reap
from tests.factories import NOW, expire_lease, make_job

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _reaped() -> Counter:
    return Counter(q.task["name"] for q in OrmQ.objects.all() if q.task["name"].endswith("-reaped"))


def test_fifty_late_jobs_and_ten_passes_a_minute_apart_queue_one_copy_per_grace(cassandra_db, settings):
    settings.IMAGEDL_REAPER_GRACE_SECONDS = 120
    settings.IMAGEDL_LEASE_SECONDS = 3600
    late = [make_job(run_in=NOW) for _ in range(45)]  # queued, but their tasks never ran
    expired = [make_job(run_in=NOW) for _ in range(5)]  # started, then their worker died
    for job in expired:
        services.job_start_attempt(job)
        expire_lease(job)
    OrmQ.objects.all().delete()
    start = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    for minute in range(10):
        jobs_reap(now=start + dt.timedelta(minutes=minute))
    copies = _reaped()
    # Passes at minutes 0..9 with a grace of 2 minutes: copies at 0, 2, 4, 6 and 8.
    assert set(copies) == {f"job-{job.id}-reaped" for job in late + expired}
    assert set(copies.values()) == {5}, copies.most_common(3)
    assert sum(copies.values()) == 250  # not 500


def test_passes_at_the_same_moment_queue_one_copy(cassandra_db, settings):
    settings.IMAGEDL_REAPER_GRACE_SECONDS = 120
    job = make_job(run_in=NOW)
    OrmQ.objects.all().delete()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    assert [jobs_reap(now=later).runs for _ in range(3)] == [1, 0, 0]
    assert _reaped() == Counter({f"job-{job.id}-reaped": 1})
