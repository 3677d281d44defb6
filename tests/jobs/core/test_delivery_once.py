"""At-least-once delivery made safe, in-process against the real Cassandra node: the run
lease, writes conditional on the run, the mail outbox, the reaper and the purge rows.
(The same with real worker processes, killed and duplicated: tests/ops/test_chaos.py.)"""

from __future__ import annotations

import datetime as dt
import smtplib
import uuid
from functools import partial

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django_q.models import OrmQ, Schedule

from jobs.core import services
from jobs.core.reaper import jobs_reap
from jobs.core.run import job_run
from jobs.mail import outbox
from jobs.models import JobActive, JobMail, JobPurgeDue, JobStatus, MailPending, MailState
from jobs.store import records
from jobs.store.events import job_events
from tests.factories import NOW, expire_lease, make_job
from tests.racing import race, race_each

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _queued() -> list[str]:
    return [q.task["name"] for q in OrmQ.objects.all()]


def test_two_runs_claiming_at_once_one_wins(cassandra_db):
    job = make_job(run_in=NOW)
    views = [records.job_get(job.id) for _ in range(6)]
    results = race_each([partial(services.job_start_attempt, view) for view in views])
    assert sorted(results) == [0, 0, 0, 0, 0, 1]
    stored = records.job_get(job.id)
    assert stored.status == JobStatus.RUNNING and stored.attempts == 1
    winner = next(view for view, won in zip(views, results, strict=True) if won)
    assert stored.run_id == winner.run_id
    assert [e.kind for e in job_events(job.id)].count("started") == 1


def test_a_run_that_lost_its_lease_writes_nothing(cassandra_db):
    job = make_job(run_in=NOW)
    first = records.job_get(job.id)
    assert services.job_start_attempt(first) == 1
    expire_lease(first)
    second = records.job_get(job.id)
    assert services.job_start_attempt(second) == 2
    assert first.run_id != second.run_id
    # The first run wakes up: none of its writes land, and its archive goes.
    assert services.job_record_progress(first, downloaded_count=99) is False
    assert services.job_renew_lease(first) is False
    services.job_add_image(first, 1, file_name="stale.jpg", source_url="http://x/1.jpg", bytes=1)
    first_zip = default_storage.save(f"archives/{job.id.hex}-first.zip", ContentFile(b"first"))
    second_zip = default_storage.save(f"archives/{job.id.hex}-second.zip", ContentFile(b"second"))
    assert services.job_complete(first, archive_path=first_zip, archive_bytes=5, kept=1) is False
    assert not default_storage.exists(first_zip)
    assert records.job_images(job.id) == []  # readers see only the rows of the run the job names
    assert services.job_fail(first, "late") is False
    # The second run delivers.
    services.job_add_image(second, 1, file_name="one.jpg", source_url="http://x/1.jpg", bytes=1)
    assert services.job_complete(second, archive_path=second_zip, archive_bytes=6, kept=1)
    done = records.job_get(job.id)
    assert done.status == JobStatus.DONE and done.archive_path == second_zip and done.downloaded_count == 1
    assert [image.file_name for image in records.job_images(job.id)] == ["one.jpg"]
    assert default_storage.exists(second_zip)
    assert not list(JobActive.objects.all())


def test_a_copy_of_the_run_task_leaves_a_held_job_alone(cassandra_db):
    job = make_job(run_in=NOW)
    holder = records.job_get(job.id)
    services.job_start_attempt(holder)
    before = [e.kind for e in job_events(job.id)]
    assert job_run(str(job.id)) == "skipped: another run holds the job"
    after = records.job_get(job.id)
    assert (after.run_id, after.attempts, after.status) == (holder.run_id, 1, JobStatus.RUNNING)
    assert [e.kind for e in job_events(job.id)] == before


def test_each_mail_is_sent_once_however_often_its_task_runs(cassandra_db):
    job = make_job(run_in=NOW)
    mail.outbox.clear()
    results = [outbox.email_send(str(job.id), "accepted", 1, 1) for _ in range(3)]
    assert results == ["sent", "skipped: sent", "skipped: sent"]
    assert len(mail.outbox) == 1
    assert not list(MailPending.objects.all())
    # At the same moment, from several threads: still one.
    services.job_fail(records.job_get(job.id), "The search engines blocked us.")
    outcomes = race(lambda: outbox.email_send(str(job.id), "failed", 1, 1), 4)
    assert outcomes.count("sent") == 1
    assert [m.subject for m in mail.outbox].count(mail.outbox[-1].subject) == 1 and len(mail.outbox) == 2


def test_an_operators_retry_mails_again_and_replaces_the_purge_row(cassandra_db):
    job = make_job(run_in=NOW)
    services.job_start_attempt(job)
    services.job_fail(job, "The search engines blocked us.")
    mail.outbox.clear()
    assert outbox.email_send(str(job.id), "failed", 1, 1) == "sent"
    failed = records.job_get(job.id)
    assert [row.job_id for row in JobPurgeDue.objects.all()] == [job.id]
    retried = services.job_retry(failed)
    assert retried.generation == 2
    # The old retention is gone: the purge drops the row and purges nothing.
    assert services.jobs_purge_due(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).jobs == 0
    assert not list(JobPurgeDue.objects.all())
    fresh = records.job_get(job.id)
    assert fresh.run_id is None and services.job_start_attempt(fresh) == 1
    services.job_fail(fresh, "Blocked again.")
    assert outbox.email_send(str(job.id), "failed", 1, 2) == "sent"
    assert outbox.email_send(str(job.id), "failed", 1, 1) == "skipped: sent"
    assert len(mail.outbox) == 2


def test_a_failed_send_goes_back_to_pending_and_is_retried(cassandra_db, settings, monkeypatch):
    job = make_job(run_in=NOW)
    settings.IMAGEDL_EMAIL_RETRY_SECONDS = 7

    def refuse(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("gone")

    monkeypatch.setattr("jobs.mail.emails.email_deliver", refuse)
    assert outbox.email_send(str(job.id), "accepted", 1, 1) == "retry in 7s"
    row = JobMail.objects.filter(job_id=job.id, generation=1, kind="accepted").first()
    assert row.state == MailState.PENDING and row.tries == 1
    retry = Schedule.objects.get(name=f"email-accepted-{job.id}-2")
    assert "'accepted', 2, 1" in retry.args


def test_the_reaper_queues_what_nobody_works_on(cassandra_db, settings):
    settings.IMAGEDL_REAPER_GRACE_SECONDS = 60
    settings.IMAGEDL_LEASE_SECONDS = 3600
    running = make_job(run_in=NOW)
    services.job_start_attempt(running)
    expire_lease(running)
    held = make_job(run_in=NOW)
    services.job_start_attempt(held)  # a live lease: left alone
    late = make_job(run_in=NOW)  # queued, but its task never ran
    future = make_job()
    OrmQ.objects.all().delete()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    summary = jobs_reap(now=later)
    queued = _queued()
    assert f"job-{running.id}-reaped" in queued and f"job-{late.id}-reaped" in queued
    assert f"job-{held.id}-reaped" not in queued and f"job-{future.id}-reaped" not in queued
    assert summary.runs == 2
    # Jobs that start at once have no "accepted" or "started" mail (their outcome is
    # their one mail): only the future job's "accepted" mail is pending past the grace.
    assert summary.mails == 1
    assert f"email-accepted-{future.id}" in queued
    assert "requeued" in [e.kind for e in job_events(running.id)]


def test_the_reaper_forgets_finished_jobs_and_sent_mails(cassandra_db):
    job = make_job(run_in=NOW)
    assert outbox.email_send(str(job.id), "accepted", 1, 1) == "sent"
    services.job_cancel(records.job_get(job.id))
    summary = jobs_reap(now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert summary.runs == 0 and summary.mails == 0
    assert not list(JobActive.objects.all())
    assert not list(MailPending.objects.all())


def test_a_run_steps_back_when_cassandra_does_not_answer(cassandra_db, settings, monkeypatch):
    from cassandra.cluster import NoHostAvailable

    settings.IMAGEDL_TRANSIENT_BACKOFF_SECONDS = 4
    job_id = str(uuid.uuid4())

    def unreachable(job_id):
        raise NoHostAvailable(
            "Unable to connect to any servers", {"127.0.0.1:9042": ConnectionRefusedError()}
        )

    monkeypatch.setattr(records, "job_get", unreachable)
    assert job_run(job_id, 2) == "retry in 16s (NoHostAvailable)"
    retry = Schedule.objects.get(name=f"job-{job_id}-retry-3")
    assert retry.func == "jobs.tasks.job_run" and "NoHostAvailable" in retry.args
    settings.IMAGEDL_TRANSIENT_RETRIES = 3
    assert job_run(job_id, 3).startswith("gave up after 3 retries")


def test_a_run_that_steps_back_mid_job_resumes_as_the_same_attempt(cassandra_db, monkeypatch):
    """Cassandra gone in the middle of a run: the retry resumes that run without counting
    an interruption (a worker killed later must not push the job over its attempt limit),
    and a second delivery of the same retry task finds the job taken."""
    import ast

    from cassandra.cluster import NoHostAvailable

    from jobs.core import run

    job = make_job(run_in=NOW)

    def unreachable(*args, **kwargs):
        raise NoHostAvailable(
            "Unable to connect to any servers", {"127.0.0.1:9042": ConnectionRefusedError()}
        )

    monkeypatch.setattr(run, "gather", unreachable)
    assert job_run(str(job.id)).startswith("retry in")
    first = records.job_get(job.id)
    assert first.attempts == 1
    args = ast.literal_eval(Schedule.objects.get(name=f"job-{job.id}-retry-1").args)
    assert args == (str(job.id), 1, str(first.run_id), "NoHostAvailable")
    resumed_by = []
    monkeypatch.setattr(run.JobRun, "execute", lambda self: resumed_by.append(self.job.run_id) or "ran")
    assert job_run(*args) == "ran"
    resumed = records.job_get(job.id)
    assert (resumed.attempts, resumed.status) == (1, JobStatus.RUNNING)
    assert resumed.run_id == resumed_by[0] != first.run_id
    assert job_run(*args) == "skipped: another run holds the job"
    assert len(resumed_by) == 1


def test_an_outcome_mail_lost_with_its_worker_is_queued_by_the_reaper(cassandra_db):
    job = make_job(run_in=NOW)
    services.job_start_attempt(job)
    # The run delivered (its conditional write landed) and its worker died before the
    # "ready" mail was queued: the job row says done, the outbox has no such mail.
    assert records.job_status_change(job, JobStatus.DONE, only_from=(JobStatus.RUNNING,), run_is=job.run_id)
    assert not JobMail.objects.filter(job_id=job.id, kind="ready").first()
    OrmQ.objects.all().delete()
    summary = jobs_reap(now=dt.datetime.now(dt.UTC))
    assert summary.cleared == 1 and f"email-ready-{job.id}" in _queued()
    assert (
        JobMail.objects.filter(job_id=job.id, generation=1, kind="ready").first().state == MailState.PENDING
    )
    assert jobs_reap(now=dt.datetime.now(dt.UTC)).cleared == 0  # once


def test_a_mail_steps_back_when_cassandra_does_not_answer(cassandra_db, settings, monkeypatch):
    import ast

    from cassandra.cluster import NoHostAvailable

    settings.IMAGEDL_TRANSIENT_BACKOFF_SECONDS = 4
    job_id = str(uuid.uuid4())

    def unreachable(job_id):
        raise NoHostAvailable("Unable to complete the operation against any hosts", {})

    monkeypatch.setattr(records, "job_get", unreachable)
    assert outbox.email_send(job_id, "ready", 1, 1, 2) == "retry in 16s (NoHostAvailable)"
    retry = Schedule.objects.get(name=f"email-ready-{job_id}-1-back-3")
    assert retry.func == "jobs.tasks.email_send"
    assert ast.literal_eval(retry.args) == (job_id, "ready", 1, 1, 3)
    settings.IMAGEDL_TRANSIENT_RETRIES = 3
    with pytest.raises(NoHostAvailable):  # then it is the reaper's
        outbox.email_send(job_id, "ready", 1, 1, 3)
