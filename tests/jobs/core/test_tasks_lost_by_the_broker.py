"""The Redis broker hands a task to one worker and forgets it (at most once): a task
whose worker dies is gone. For every kind of task the work is found again from
Cassandra: a run and each mail by the reaper, a series' end step by the reaper, the
purge by its next scheduled pass. Here the broker's loss is the task taken out of the
queue, as a dead worker takes it out of Redis; the reaper's copies are then run as a
worker would, at a time past the reaper's grace."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core import mail
from django_q.models import OrmQ, Schedule

from jobs.apps import PURGE_SCHEDULE_NAME
from jobs.core import run, services
from jobs.core.reaper import jobs_reap
from jobs.lib import scheduling
from jobs.mail import outbox
from jobs.models import JobMail, JobStatus, MailState
from jobs.store import records
from jobs.store.series import run_job_id, series_get
from tests.clock import SimulatedClock, run_due_tasks
from tests.factories import (
    IN_AN_HOUR,
    NOW,
    deliver_run,
    expire_lease,
    finished_minutes_ago,
    make_done_job,
    make_job,
    submit_series,
)

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def lose_every_queued_task() -> None:
    OrmQ.objects.all().delete()


def past_the_grace(clock: SimulatedClock) -> None:
    clock.advance(seconds=settings.IMAGEDL_REAPER_GRACE_SECONDS + settings.IMAGEDL_CLOCK_SKEW_SECONDS + 1)


@pytest.mark.parametrize("claimed", [False, True], ids=["before-its-claim", "mid-run"])
def test_a_lost_run_is_queued_again_by_the_reaper(cassandra_db, monkeypatch, claimed):
    job = make_job(run_in=NOW)
    if claimed:  # its worker died mid-run: the lease runs out
        services.job_start_attempt(job)
        expire_lease(job)
    lose_every_queued_task()
    clock = SimulatedClock(monkeypatch)
    past_the_grace(clock)
    assert jobs_reap(now=clock.now).runs == 1
    ran = []
    monkeypatch.setattr(run.JobRun, "execute", lambda self: ran.append(self.job.attempts) or "ran")
    run_due_tasks(clock, {scheduling.RUN_TASK: run.job_run})
    assert ran == [2 if claimed else 1]
    assert records.job_get(job.id).status == JobStatus.RUNNING


def a_job_with_its_mail(kind: str):
    if kind == "accepted":
        return make_job()
    if kind == "ready":
        return make_done_job(images=1)
    job = make_job(run_in=NOW if kind == "failed" else IN_AN_HOUR)  # started early: it has a "started" mail
    services.job_start_attempt(job)
    if kind == "failed":
        services.job_fail(job, "We could not find any images for that search.")
    return job


@pytest.mark.parametrize("kind", ["accepted", "started", "ready", "failed"])
def test_a_lost_mail_is_sent_by_the_reaper(cassandra_db, monkeypatch, kind):
    job = a_job_with_its_mail(kind)
    lose_every_queued_task()
    mail.outbox.clear()
    clock = SimulatedClock(monkeypatch)
    past_the_grace(clock)
    assert jobs_reap(now=clock.now).mails >= 1
    run_due_tasks(clock, {scheduling.EMAIL_TASK: outbox.email_send})
    assert JobMail.objects.filter(job_id=job.id, generation=1, kind=kind).first().state == MailState.SENT
    assert len(mail.outbox) >= 1


def test_a_lost_series_stopped_mail_is_sent_by_the_reaper(cassandra_db, monkeypatch, settings):
    settings.IMAGEDL_SERIES_MAX_RUNS = 1
    job = deliver_run(submit_series())
    assert series_get(job.series_id).stop_reason == "max_runs"
    lose_every_queued_task()
    clock = SimulatedClock(monkeypatch)
    past_the_grace(clock)
    jobs_reap(now=clock.now)
    run_due_tasks(clock, {scheduling.EMAIL_TASK: outbox.email_send})
    row = JobMail.objects.filter(job_id=job.id, generation=1, kind="series_stopped").first()
    assert row.state == MailState.SENT


def test_a_series_end_step_lost_with_its_worker_is_run_by_the_reaper(cassandra_db):
    job = records.job_get(submit_series().id)
    services.job_start_attempt(job)
    # The run's outcome landed, then its worker died: no end step, no next run.
    assert records.job_status_change(job, JobStatus.DONE, only_from=(JobStatus.RUNNING,), run_is=job.run_id)
    assert records.job_get(run_job_id(job.series_id, 2)) is None
    lose_every_queued_task()
    assert jobs_reap().cleared == 1
    assert records.job_get(run_job_id(job.series_id, 2)).status == JobStatus.SCHEDULED


def test_a_lost_purge_task_is_made_up_by_the_next_scheduled_pass(cassandra_db):
    schedule = Schedule.objects.get(name=PURGE_SCHEDULE_NAME)
    assert schedule.schedule_type == Schedule.MINUTES and schedule.repeats == -1  # it comes again
    job = make_done_job(images=1)
    finished_minutes_ago(job, settings.IMAGEDL_RETENTION_MINUTES + 3 * settings.IMAGEDL_PURGE_EVERY_MINUTES)
    lose_every_queued_task()  # the purge tasks of the passes since it fell due
    assert services.jobs_purge_due().jobs == 1  # the next pass purges what fell due before
    assert records.job_get(job.id).email is None
