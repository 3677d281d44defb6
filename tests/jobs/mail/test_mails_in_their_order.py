"""The user reads a job's mails in the order of its life: a mail whose moment has passed
(the "accepted" or "started" mail of a job whose outcome mail went out) is dropped and
the job's events say so, and a passing fault while the "started" mail is queued does
not lose it."""

from __future__ import annotations

import ast

import pytest
from cassandra.cluster import Session
from django.core import mail
from django_q.models import OrmQ, Schedule

from jobs.core import run, services
from jobs.core.run import job_run
from jobs.mail import outbox
from jobs.models import JobActive, JobMail, JobStatus, MailPending, MailState
from jobs.store import records
from jobs.store.events import job_events
from tests.cassandra_faults import writes_to_time_out
from tests.factories import NOW, make_done_job, make_job

EXECUTE = Session.execute

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def test_a_started_mail_after_the_ready_mail_is_dropped_and_noted(cassandra_db):
    job = make_done_job(images=1)
    assert outbox.email_send(str(job.id), "ready", 1, 1) == "sent"
    mail.outbox.clear()
    assert outbox.email_send(str(job.id), "started", 1, 1) == "skipped: too late"
    assert mail.outbox == []
    row = JobMail.objects.filter(job_id=job.id, generation=1, kind="started").first()
    assert row.state == MailState.SUPERSEDED
    assert "email_dropped" in [event.kind for event in job_events(job.id)]


def test_a_started_mail_before_the_ready_mail_goes_out(cassandra_db):
    job = make_done_job(images=1)  # done, its "ready" mail not sent yet
    mail.outbox.clear()
    assert outbox.email_send(str(job.id), "started", 1, 1) == "sent"
    assert len(mail.outbox) == 1


def test_a_timeout_while_the_started_mail_is_queued_does_not_lose_it(cassandra_db, monkeypatch):
    job = make_job()  # due later and run early: it has "accepted" and "started" mails
    monkeypatch.setattr(run.JobRun, "execute", lambda self: "ran")
    # The outbox's listing row times out as the claim queues the "started" mail.
    writes_to_time_out(monkeypatch, "mail_pending", batches=True)
    assert job_run(str(job.id)).startswith("retry in")
    monkeypatch.setattr(Session, "execute", EXECUTE)
    claimed = records.job_get(job.id)
    args = ast.literal_eval(Schedule.objects.get(name=f"job-{job.id}-retry-1").args)
    assert args[2] == str(claimed.run_id)  # the retry resumes the run that claimed the job
    assert job_run(*args) == "ran"
    assert records.job_get(job.id).attempts == 1
    started = JobMail.objects.filter(job_id=job.id, generation=1, kind="started").first()
    assert started is not None and started.state == MailState.PENDING
    assert [row.kind for row in MailPending.objects.all() if row.job_id == job.id] == [
        "accepted",
        "started",
    ]


def test_a_timeout_while_the_ready_mail_is_queued_is_repaired_by_the_runs_retry(cassandra_db, monkeypatch):
    job = make_job(run_in=NOW)

    def deliver_then_time_out(self) -> str:
        writes_to_time_out(monkeypatch, "mail_pending", batches=True)  # the outbox's batch times out
        services.job_complete(
            self.job, archive_path=f"archives/{self.job.id.hex}-x.zip", archive_bytes=1, kept=1
        )
        return "done"

    monkeypatch.setattr(run.JobRun, "execute", deliver_then_time_out)
    assert job_run(str(job.id)).startswith("retry in")  # delivered; the run steps back
    monkeypatch.setattr(Session, "execute", EXECUTE)
    assert records.job_get(job.id).status == JobStatus.DONE
    args = ast.literal_eval(Schedule.objects.get(name=f"job-{job.id}-retry-1").args)
    OrmQ.objects.all().delete()
    assert job_run(*args) == "skipped: done"
    ready = JobMail.objects.filter(job_id=job.id, generation=1, kind="ready").first()
    assert ready is not None and ready.state == MailState.PENDING
    # Queued now, by the run that delivered, not by the reaper after its grace.
    assert f"email-ready-{job.id}" in [queued.task["name"] for queued in OrmQ.objects.all()]
    assert not [row for row in JobActive.objects.all() if row.job_id == job.id]
