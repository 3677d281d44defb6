"""A run that steps back from a passing fault (the browser not starting) extends its own
lease by its delay: the reaper does not take the job over and count an attempt while
the run waits, and a stale run cannot extend a lease it no longer holds."""

from __future__ import annotations

import datetime as dt

import pytest

from downloader.browser import BrowserStartFailed
from jobs.core import run, services
from jobs.core.reaper import jobs_reap
from jobs.core.run import job_run
from jobs.store import records
from jobs.store.events import job_events
from tests.factories import NOW, expire_lease, make_job

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def browser_does_not_start(*args, **kwargs):
    raise BrowserStartFailed("chromedriver did not answer")


def test_the_reaper_leaves_a_run_that_waits_out_a_browser_failure(cassandra_db, settings, monkeypatch):
    settings.IMAGEDL_LEASE_SECONDS = 3
    settings.IMAGEDL_TRANSIENT_BACKOFF_SECONDS = 60
    settings.IMAGEDL_REAPER_GRACE_SECONDS = 20
    job = make_job(run_in=NOW)
    monkeypatch.setattr(run, "gather", browser_does_not_start)
    assert job_run(str(job.id)) == "retry in 60s (BrowserStartFailed)"
    waiting = records.job_get(job.id)
    now = dt.datetime.now(dt.UTC)
    assert waiting.lease_until.replace(tzinfo=dt.UTC) >= now + dt.timedelta(seconds=60)
    # Half-way through the delay, long after a 3 s lease would have run out:
    summary = jobs_reap(now=now + dt.timedelta(seconds=30))
    assert summary.runs == 0
    assert "requeued" not in [event.kind for event in job_events(job.id)]
    assert records.job_get(job.id).attempts == 1


def test_a_run_that_lost_its_job_does_not_extend_the_lease_of_the_next(cassandra_db, settings):
    job = make_job(run_in=NOW)
    first = records.job_get(job.id)
    services.job_start_attempt(first)
    expire_lease(first)
    second = records.job_get(job.id)
    services.job_start_attempt(second)
    before = records.job_get(job.id).lease_until
    assert services.job_renew_lease(first, extra_seconds=600) is False
    assert records.job_get(job.id).lease_until == before
