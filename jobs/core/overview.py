"""The jobs in hand at a glance, for operators: how many wait and run, which are
overdue, and the oldest one waiting past its time.

Read from the queue table ``job_active`` the way the reaper reads it (the buckets from
its watermark up to now, ``jobs.store.queues``), then each listed job's row: jobs
scheduled for later sit in later buckets and are not read. The metrics and the admin
index take it from the shared cache (``jobs_overview_cached``), at most one read every
``OVERVIEW_SECONDS`` for all processes that share the cache.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from jobs.core.services import lease_held
from jobs.lib.utc import aware_utc
from jobs.models import Job, JobActive, JobStatus
from jobs.store import records
from jobs.store.queues import queue_buckets

ACTIVE_QUEUE = "job_active"
OVERVIEW_SECONDS = 15
CACHE_KEY = "imagedl:jobs-overview"
STATES = ("scheduled", "running")


@dataclass
class Overview:
    """Jobs due by ``at``: counts by state, the overdue ones, the oldest waiting."""

    at: float  # a timestamp
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    overdue: list[str] = field(default_factory=list)  # job ids
    oldest_waiting: str | None = None  # a job id
    oldest_waiting_seconds: float = 0.0


def job_overdue(job: Job, now: dt.datetime | None = None) -> bool:
    """Scheduled, not held, and past its run time by more than the reaper's grace with
    no run holding it; or running with a lease that ran out."""
    now = now or timezone.now()
    if lease_held(job.lease_until, now):
        return False
    if job.status == JobStatus.RUNNING:
        return True
    grace = dt.timedelta(seconds=settings.IMAGEDL_REAPER_GRACE_SECONDS)
    return job.status == JobStatus.SCHEDULED and not job.held and aware_utc(job.run_at) < now - grace


def jobs_due(now: dt.datetime) -> list[Job]:
    """The active jobs listed in the buckets up to ``now`` (finished ones left out)."""
    jobs = []
    for bucket in queue_buckets(ACTIVE_QUEUE, now, now=now):
        for row in JobActive.objects.filter(bucket=bucket).limit(None):
            job = records.job_get(row.job_id)
            if job is not None and job.status in JobStatus.ACTIVE:
                jobs.append(job)
    return jobs


def jobs_overview(now: dt.datetime | None = None) -> Overview:
    """Read the jobs due by ``now`` and sum them up."""
    now = now or timezone.now()
    overview = Overview(at=now.timestamp())
    for job in jobs_due(now):
        run_at = aware_utc(job.run_at)
        if job.status == JobStatus.SCHEDULED and run_at > now:
            continue  # in the present bucket, not yet due
        overview.counts[job.status] += 1
        if job_overdue(job, now):
            overview.overdue.append(str(job.id))
        waited = (now - run_at).total_seconds()
        if job.status == JobStatus.SCHEDULED and not job.held and waited > overview.oldest_waiting_seconds:
            overview.oldest_waiting, overview.oldest_waiting_seconds = str(job.id), waited
    return overview


def jobs_overview_cached() -> Overview:
    """``jobs_overview`` as read at most ``OVERVIEW_SECONDS`` ago by any process sharing
    the cache."""
    stored = cache.get(CACHE_KEY)
    if isinstance(stored, dict):
        return Overview(**stored)
    overview = jobs_overview()
    cache.set(CACHE_KEY, asdict(overview), OVERVIEW_SECONDS)
    return overview


def overdue_ids(overview: Overview) -> set[uuid.UUID]:
    return {uuid.UUID(text) for text in overview.overdue}
