"""Double opt-in: a recurring series runs only once the mailbox's owner confirms it.

The series' first mail (the "scheduled" one) carries a link with /confirm/ in its
path; opening it shows one button and changes nothing (mail scanners follow links);
pressing it confirms. Until then no run happens, whatever the reaper or a stray task
does; unconfirmed, the series expires after IMAGEDL_SERIES_CONFIRM_HOURS and its
personal data goes. One-off jobs are not held."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
from django_q.models import Schedule

from jobs.core import services
from jobs.core.reaper import jobs_reap
from jobs.core.run import job_run
from jobs.mail.emails import email_build
from jobs.models import JobStatus, SeriesStatus
from jobs.series.services import series_run_now, series_submit
from jobs.store import records
from jobs.store.series import series_get
from tests.factories import make_job

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _submit(run_in: dt.timedelta = dt.timedelta(hours=1)):
    return series_submit(
        every="day",
        email="lin@example.org",
        query="red fox",
        requested_count=2,
        time_zone="Europe/Paris",
        run_at=dt.datetime.now(dt.UTC) + run_in,
    )


def _schedules(job) -> int:
    return Schedule.objects.filter(name=f"job-{job.id}").count()


def _confirm_path(job) -> str:
    message = email_build(records.job_get(job.id), "accepted")
    found = re.findall(r"https?://\S+/confirm/\S+", message.body)
    assert len(found) == 1, message.body
    assert found[0] in message.alternatives[0][0]  # the HTML part has it too
    return urlsplit(found[0]).path


def test_a_series_waits_for_its_confirmation_and_runs_once_confirmed(cassandra_db, client):
    job = _submit()
    series = series_get(job.series_id)
    assert series.status == SeriesStatus.PENDING
    assert _schedules(job) == 0  # its run is not queued
    # Nothing runs it meanwhile: not the reaper long past its time, not a stray task.
    assert jobs_reap(now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=6)).runs == 0
    assert job_run(str(job.id)).startswith("skipped")
    assert "confirmation" in series_run_now(series)  # nor an operator's "run now"
    assert records.job_get(job.id).status == JobStatus.SCHEDULED

    confirm = _confirm_path(job)
    page = client.get(confirm)  # a mail scanner follows the link: nothing changes
    assert page.status_code == 200
    assert page.content.decode().count("<button") == 1
    assert series_get(series.id).status == SeriesStatus.PENDING and _schedules(job) == 0

    response = client.post(confirm)
    assert response.status_code == 302
    assert series_get(series.id).status == SeriesStatus.ACTIVE
    assert _schedules(job) == 1  # the first run is queued at its time
    assert client.post(confirm).status_code == 302  # confirming twice changes nothing
    assert _schedules(job) == 1


def test_a_first_run_whose_time_passed_before_the_confirmation_runs_at_once(cassandra_db, client):
    job = _submit(run_in=dt.timedelta(seconds=1))
    records.job_update(records.job_get(job.id), run_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=3))
    client.post(_confirm_path(job))
    moved = records.job_get(job.id)
    assert moved.run_at.replace(tzinfo=dt.UTC) > dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)


def test_an_unconfirmed_series_expires_and_its_personal_data_goes(cassandra_db, settings):
    settings.IMAGEDL_SERIES_CONFIRM_HOURS = 48
    job = _submit()
    now = dt.datetime.now(dt.UTC)
    services.jobs_purge_due(now=now + dt.timedelta(hours=47))
    assert series_get(job.series_id).status == SeriesStatus.PENDING  # not yet

    services.jobs_purge_due(now=now + dt.timedelta(hours=49))
    series = series_get(job.series_id)
    assert series.status == SeriesStatus.STOPPED and series.stop_reason == "unconfirmed"
    assert series.purged_at is not None and series.email is None and series.query is None
    expired = records.job_get(job.id)
    assert expired.status == JobStatus.CANCELLED and expired.email is None and expired.query is None


def test_a_confirmed_series_does_not_expire(cassandra_db, client):
    job = _submit()
    client.post(_confirm_path(job))
    services.jobs_purge_due(now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=49))
    series = series_get(job.series_id)
    assert series.status == SeriesStatus.ACTIVE and series.email == "lin@example.org"


def test_one_off_jobs_are_not_held(cassandra_db):
    job = make_job(run_in=dt.timedelta(hours=1))
    assert _schedules(job) == 1
    assert "/confirm/" not in email_build(records.job_get(job.id), "accepted").body
