"""A series moves on, or stops, whatever fails around the end of its runs: a run of a
stopped series does not run, a cancel leaves the job to the reaper until the series'
step went through, and a run that could not be scheduled still counts."""

from __future__ import annotations

import pytest
from django.utils import timezone

from jobs.core import hooks, run, services
from jobs.core.reaper import jobs_reap
from jobs.core.run import job_run
from jobs.lib import scheduling
from jobs.models import JobActive, JobMail, JobStatus, Series, SeriesStatus
from jobs.store import records
from jobs.store.events import job_events
from jobs.store.series import run_job_id, series_get
from tests.factories import deliver_run, submit_series

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def listed_active(job_id) -> bool:
    return any(row.job_id == job_id for row in JobActive.objects.all())


def test_a_run_made_for_a_series_stopped_meanwhile_does_not_run(cassandra_db, monkeypatch):
    first = deliver_run(submit_series())
    second = records.job_get(run_job_id(first.series_id, 2))
    # Stop read the series before the end step made run 2, and cancelled run 1 only.
    Series.objects(id=first.series_id).update(
        status=SeriesStatus.STOPPED, stop_reason="user", stopped_at=timezone.now()
    )
    ran = []
    monkeypatch.setattr(run.JobRun, "execute", lambda self: ran.append(self.job.id) or "done")
    assert job_run(str(second.id)) == "skipped: the series stopped"
    assert ran == []
    after = records.job_get(second.id)
    assert after.status == JobStatus.CANCELLED
    assert "series_stopped" in [event.kind for event in job_events(second.id)]
    assert list(JobMail.objects.filter(job_id=second.id)) == []
    assert not listed_active(second.id)


def test_a_cancel_leaves_the_job_listed_until_the_series_step_went_through(cassandra_db, monkeypatch):
    job = submit_series()

    def broken(job) -> None:
        raise ConnectionError("Cassandra went away")

    monkeypatch.setitem(hooks._end_steps, "series", broken)
    assert services.job_cancel(records.job_get(job.id))
    assert listed_active(job.id)  # the reaper will repeat the step
    monkeypatch.undo()
    assert jobs_reap().cleared == 1
    series = series_get(job.series_id)
    assert series.runs_scheduled == 2
    assert records.job_get(series.next_job_id).status == JobStatus.SCHEDULED


def test_a_run_that_could_not_be_scheduled_still_moves_the_series_on(cassandra_db, monkeypatch):
    job = submit_series()
    series_id = job.series_id
    second_id = run_job_id(series_id, 2)
    queue_at = scheduling.queue_at
    refused = []

    def refuse_once(name, *args, **kwargs):
        if name == f"job-{second_id}" and not refused:
            refused.append(name)
            raise ConnectionError("the broker did not answer")
        return queue_at(name, *args, **kwargs)

    monkeypatch.setattr(scheduling, "queue_at", refuse_once)
    deliver_run(job)
    assert refused and records.job_get(second_id).status == JobStatus.FAILED
    series = series_get(series_id)
    assert series.runs_scheduled == 3 and series.runs_done == 2
    assert records.job_get(run_job_id(series_id, 3)).status == JobStatus.SCHEDULED
