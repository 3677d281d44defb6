"""Submitting, cancelling, retrying and purging jobs through jobs.core.services."""

from __future__ import annotations

import ast
import datetime as dt
import re
import uuid
import zoneinfo

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django_q.models import OrmQ, Schedule

from jobs.core import services
from jobs.lib import links
from jobs.models import JobMail, JobPurgeDue, JobStatus, MailState
from jobs.store import records
from jobs.store.events import job_events
from tests.factories import expire_lease, finished_minutes_ago, make_done_job, make_job

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])


def _queued_task_names() -> list[str]:
    return [q.task["name"] for q in OrmQ.objects.all()]


def test_future_job_is_stored_and_scheduled_with_only_its_id(cassandra_db):
    run_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
    job = make_job(run_at=run_at)
    stored = records.job_get(job.id)
    assert stored.status == JobStatus.SCHEDULED
    schedule = Schedule.objects.get(name=f"job-{job.id}")
    assert schedule.func == "jobs.tasks.job_run"
    assert ast.literal_eval(schedule.args) == str(job.id)  # the id, and nothing personal
    assert "ada@" not in schedule.args and "fox" not in schedule.args
    assert abs(schedule.next_run - run_at) < dt.timedelta(seconds=1)
    assert f"job-{job.id}" not in _queued_task_names()
    assert [e.kind for e in job_events(job.id)] == ["scheduled"]


def test_past_or_present_job_is_queued_at_once(cassandra_db):
    job = make_job(run_in=-dt.timedelta(minutes=1))
    assert f"job-{job.id}" in _queued_task_names()
    assert not Schedule.objects.filter(name=f"job-{job.id}").exists()
    task = next(q.task for q in OrmQ.objects.all() if q.task["name"] == f"job-{job.id}")
    assert task["args"] == (str(job.id),)


def _last_sunday(year: int, month: int) -> dt.date:
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() + 1) % 7)


def _second_sunday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(6 - first.weekday()) % 7 + 7)


def _dst_cases() -> list:
    """Cases from the rules themselves (not from zoneinfo), in the first year where
    they are still ahead, so the test never runs out of future dates."""
    now = dt.datetime.now()
    year = now.year + 1  # always at least a month ahead of today
    autumn = _last_sunday(year, 10)  # the EU leaves summer time at 01:00 UTC
    spring = _second_sunday(year, 3)  # the US enters it at 02:00 local
    at = dt.datetime.combine
    return [
        # Berlin's 02:30 happens twice that night: fold 0 is summer time (UTC+2), fold 1 winter (UTC+1).
        ("Europe/Berlin", at(autumn, dt.time(2, 30, fold=0)), at(autumn, dt.time(0, 30))),
        ("Europe/Berlin", at(autumn, dt.time(2, 30, fold=1)), at(autumn, dt.time(1, 30))),
        # New York: 09:00 the day before is UTC-5, the day after UTC-4.
        (
            "America/New_York",
            at(spring - dt.timedelta(days=1), dt.time(9)),
            at(spring - dt.timedelta(days=1), dt.time(14)),
        ),
        (
            "America/New_York",
            at(spring + dt.timedelta(days=1), dt.time(9)),
            at(spring + dt.timedelta(days=1), dt.time(13)),
        ),
        # Kolkata is UTC+5:30 all year: New Year's Eve 23:45 is 18:15 UTC.
        ("Asia/Kolkata", dt.datetime(year, 12, 31, 23, 45), dt.datetime(year, 12, 31, 18, 15)),
    ]


@pytest.mark.parametrize("zone,local,expected_utc", _dst_cases())
def test_run_time_in_the_users_zone_becomes_the_right_utc_instant(
    cassandra_db, zone, local, expected_utc, settings
):
    settings.IMAGEDL_MAX_SCHEDULE_DAYS = 3650
    run_at = local.replace(tzinfo=zoneinfo.ZoneInfo(zone))
    assert run_at > dt.datetime.now(dt.UTC)
    job = make_job(run_at=run_at, time_zone=zone)
    schedule = Schedule.objects.get(name=f"job-{job.id}")
    assert schedule.next_run == expected_utc.replace(tzinfo=dt.UTC)
    assert records.job_get(job.id).run_at == expected_utc
    assert records.job_get(job.id).time_zone == zone


def test_accepted_email_is_queued_not_sent_inline(cassandra_db):
    job = make_job()
    assert f"email-accepted-{job.id}" in _queued_task_names()
    assert mail.outbox == []


@pytest.mark.parametrize(
    "step",
    [
        "_enqueue_run",  # the run's schedule, the transaction's first insert
        "queue_send",  # the mail's send task, its second
    ],
)
def test_a_job_that_cannot_be_queued_is_recorded_as_failed_not_left_waiting(cassandra_db, monkeypatch, step):
    def broken(*args, **kwargs):
        raise RuntimeError("queue table is locked")

    monkeypatch.setattr(services, step, broken)
    with pytest.raises(RuntimeError):
        make_job()
    (stored,) = records.jobs_list_newest_first().jobs
    assert stored.status == JobStatus.FAILED
    assert stored.error == "could not be scheduled"
    # The schedule row was rolled back with the email: nothing will run it.
    assert not Schedule.objects.filter(name=f"job-{stored.id}").exists()
    assert not OrmQ.objects.exists()
    assert [e.kind for e in job_events(stored.id)] == ["scheduled", "failed"]
    assert [row.job_id for row in JobPurgeDue.objects.all()] == [stored.id]
    # No "accepted" mail waits in the outbox for the reaper to send.
    assert [
        row.state for row in JobMail.objects.filter(job_id=stored.id) if row.state == MailState.PENDING
    ] == []


def test_a_submission_reads_nothing_back_and_holds_sqlite_for_no_cassandra_statement(cassandra_db):
    """SQLite has one write lock for every process: a submission holds it for its two
    inserts (the run's schedule, the mail's send task), not for a Cassandra round trip;
    and a job of no series needs no read for its webhooks (none can be stored yet)."""
    from django.db import connection

    from jobs.store import cassandra

    statements: list[tuple[str, bool]] = []
    outer = len(connection.atomic_blocks)  # the test's own transaction

    def seen(response_future) -> None:
        query = response_future.query
        text = getattr(query, "query_string", None) or getattr(query, "prepared_statement", query)
        statements.append((str(getattr(text, "query_string", text)), len(connection.atomic_blocks) > outer))

    session = cassandra.session()
    session.add_request_init_listener(seen)
    try:
        job = make_job()
    finally:
        session.remove_request_init_listener(seen)
    assert Schedule.objects.filter(name=f"job-{job.id}").exists()
    assert f"email-accepted-{job.id}" in _queued_task_names()
    assert len(statements) == 1  # one batch: the job, its listing rows, its event, its mail
    assert not [text for text, _ in statements if "SELECT" in text.upper()]
    assert not [text for text, in_transaction in statements if in_transaction]


def test_cancel_before_the_run_removes_the_schedule(cassandra_db):
    job = make_job()
    assert services.job_cancel(job) is True
    assert not Schedule.objects.filter(name=f"job-{job.id}").exists()
    assert records.job_get(job.id).status == JobStatus.CANCELLED
    assert services.job_cancel(records.job_get(job.id)) is False  # already finished
    assert "cancelled" in [e.kind for e in job_events(job.id)]


def test_retry_requeues_a_failed_job_from_scratch(cassandra_db):
    job = make_job()
    services.job_start_attempt(job)
    services.job_record_progress(job, found_count=40, downloaded_count=3, rejected_count=5)
    services.job_fail(job, "The search engine returned no results.")
    still_scheduled = make_job()
    with pytest.raises(services.JobStateError):
        services.job_retry(still_scheduled)
    retried = services.job_retry(records.job_get(job.id))
    fresh = records.job_get(retried.id)
    assert fresh.status == JobStatus.SCHEDULED
    assert (fresh.attempts, fresh.found_count, fresh.downloaded_count, fresh.error) == (0, 0, 0, None)
    assert f"job-{job.id}" in _queued_task_names()


def test_purge_deletes_archive_images_and_personal_data_but_keeps_the_record(cassandra_db):
    job = make_done_job(images=1, requested_count=25)
    path = job.archive_path
    services.job_add_image(job, 1, file_name="red-fox_0001.jpg", source_url="http://img/1.jpg", bytes=10)
    services.job_purge(records.job_get(job.id))
    purged = records.job_get(job.id)
    assert not default_storage.exists(path)
    assert records.job_images(job.id) == []
    assert (purged.email, purged.query, purged.page_url) == (None, None, None)
    assert purged.status == JobStatus.EXPIRED and purged.purged_at is not None
    assert purged.requested_count == 25  # the anonymous record stays
    with pytest.raises(services.JobStateError):
        services.job_retry(purged)


def test_purge_due_takes_exactly_the_jobs_past_retention(cassandra_db, settings):
    settings.IMAGEDL_RETENTION_MINUTES = 30
    now = dt.datetime.now(dt.UTC)
    old = make_job()
    young = make_job()
    for job, finished_ago in ((old, 31), (young, 29)):
        services.job_fail(job, "x")
        finished_minutes_ago(job, finished_ago, now=now)
    dry = services.jobs_purge_due(now=now, dry_run=True)
    assert dry.job_ids == [old.id]
    assert records.job_get(old.id).email == "ada@example.org"
    done = services.jobs_purge_due(now=now)
    assert done.job_ids == [old.id]
    assert records.job_get(old.id).email is None
    assert records.job_get(young.id).email == "ada@example.org"
    assert services.jobs_purge_due(now=now).jobs == 0  # nothing twice


def test_links_are_signed_scoped_and_expire():
    job_id = uuid.uuid4()
    token = links.token_make(job_id, "status")
    assert links.token_read(token, "status") == job_id
    with pytest.raises(links.LinkError, match="invalid"):
        links.token_read(token, "download")  # wrong purpose
    with pytest.raises(links.LinkError, match="invalid"):
        links.token_read(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], "status")
    with pytest.raises(links.LinkError, match="invalid"):
        links.token_read(job_id.hex, "status")  # a job id alone opens nothing
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    download = links.token_make(job_id, "download", soon)
    assert links.token_read(download, "download") == job_id
    with pytest.raises(links.LinkError, match="expired"):
        links.token_read(download, "download", now=soon + dt.timedelta(seconds=1))


def test_emails_have_subject_text_html_and_local_times(cassandra_db):
    from jobs.mail.emails import email_build

    run_at = dt.datetime.combine(dt.date.today() + dt.timedelta(days=10), dt.time(23, 15), dt.UTC)
    tokyo = run_at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert tokyo.date() == run_at.date() + dt.timedelta(days=1)  # 23:15 UTC is 08:15 the next day there
    job = make_job(run_at=run_at, time_zone="Asia/Tokyo")
    message = email_build(job, "accepted")
    assert message.subject.startswith("Your image search is scheduled: red fox")
    assert f"{tokyo:%A} {tokyo.day} {tokyo:%B %Y}, 08:15 (Asia/Tokyo)" in message.body
    html, mime = message.alternatives[0]
    assert mime == "text/html" and "Follow its progress" in html
    # The status link (signed with a timestamp: read back, not compared with a new one).
    token = re.search(r"/jobs/([^/\s]+)/", message.body).group(1)
    assert links.token_read(token, "status") == job.id
    services.job_fail(job, "The search engines blocked us.")
    failed = email_build(records.job_get(job.id), "failed")
    assert "The search engines blocked us." in failed.body and "/resubmit" in failed.body


class _RefusingHandler:
    """Refuses every recipient for now (4xx: try later; a 5xx is refused for good at
    once, test_series_limits.py), quoting the address in its reply."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return f"450 4.2.0 <{address}>: mailbox busy"


def test_an_email_given_up_on_leaves_no_address_in_the_event_log(cassandra_db, settings):
    from aiosmtpd.controller import Controller

    from jobs.tasks import email_send
    from tests.mailserver import free_port

    port = free_port()
    controller = Controller(_RefusingHandler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.IMAGEDL_EMAIL_MAX_TRIES = 1
        job = make_job()
        assert email_send(str(job.id), "accepted") == "gave up"
    finally:
        controller.stop()
    failed = [e for e in job_events(job.id) if e.kind == "email_failed"]
    assert len(failed) == 1
    assert "SMTPRecipientsRefused" in failed[0].message
    assert "ada@example.org" not in failed[0].message + str(failed[0].data)


def test_a_cancel_that_lands_while_the_run_delivers_wins_and_sends_no_link(cassandra_db):
    job = make_job()
    assert services.job_start_attempt(job) == 1
    run_view = records.job_get(job.id)  # what the worker holds
    assert services.job_cancel(records.job_get(job.id)) is True
    path = default_storage.save(f"archives/{job.id.hex}.zip", ContentFile(b"PK\x05\x06" + b"\0" * 18))
    assert services.job_complete(run_view, archive_path=path, archive_bytes=22, kept=1) is False
    assert not default_storage.exists(path)
    assert services.job_fail(run_view, "late failure") is False
    assert services.job_start_attempt(records.job_get(job.id)) == 0
    final = records.job_get(job.id)
    assert final.status == JobStatus.CANCELLED and not final.archive_path and not final.error
    emails = [name for name in _queued_task_names() if name.startswith("email-")]
    assert emails == [f"email-accepted-{job.id}", f"email-started-{job.id}"]  # no "ready", no "failed"
    assert [e.kind for e in job_events(job.id)].count("done") == 0


def test_a_job_interrupted_too_often_fails_with_an_email(cassandra_db, settings):
    from jobs.core.run import job_run

    settings.IMAGEDL_JOB_MAX_ATTEMPTS = 2
    job = make_job(run_in=-dt.timedelta(minutes=1))
    assert services.job_start_attempt(job) == 1
    assert services.job_start_attempt(records.job_get(job.id)) == 0  # its lease is live
    expire_lease(job)  # a worker died ...
    assert services.job_start_attempt(records.job_get(job.id)) == 2
    expire_lease(records.job_get(job.id))  # ... twice
    assert job_run(job.id) == "failed: attempts"
    failed = records.job_get(job.id)
    assert failed.status == JobStatus.FAILED and "interrupted 2 times" in failed.error
    assert f"email-failed-{job.id}" in _queued_task_names()


def test_a_job_started_at_once_is_told_only_its_outcome_even_when_its_run_resumes(cassandra_db):
    from jobs.models import JobMail

    job = make_job(run_in=dt.timedelta(0))
    run_id = None
    for _ in range(2):  # its first start, then the same run resuming after a step back
        assert services.job_start_attempt(records.job_get(job.id), run_id=run_id) == 1
        run_id = records.job_get(job.id).run_id
    assert [row.kind for row in JobMail.objects.filter(job_id=job.id)] == []
    later = make_job()  # due in an hour, started now: told that it started
    services.job_start_attempt(later)
    assert {row.kind for row in JobMail.objects.filter(job_id=later.id)} == {"accepted", "started"}
