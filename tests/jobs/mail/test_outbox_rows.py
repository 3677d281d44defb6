"""The outbox's two rows, the mail (``job_mail``) and its listing for the reaper
(``mail_pending``), land together or not at all: a write that times out between them
cannot leave a mail the reaper never sees."""

from __future__ import annotations

import contextlib

import pytest
from cassandra import WriteTimeout

from jobs.mail import outbox
from jobs.models import JobMail, MailPending
from tests.cassandra_faults import writes_to_time_out
from tests.factories import NOW, make_job_record

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])


def outbox_rows(job) -> tuple[list[str], list[str]]:
    mails = [row.kind for row in JobMail.objects.filter(job_id=job.id)]
    pending = [row.kind for row in MailPending.objects.all() if row.job_id == job.id]
    return mails, pending


def test_a_mail_and_its_pending_row_are_written_in_one_batch(cassandra_db, monkeypatch):
    job = make_job_record(run_in=NOW)
    writes_to_time_out(monkeypatch, "mail_pending")
    with contextlib.suppress(WriteTimeout):
        outbox.email_enqueue(job, "ready")
    monkeypatch.undo()
    mails, pending = outbox_rows(job)
    assert mails == pending == ["ready"]


def test_a_mail_enqueued_once_gets_its_pending_row_when_the_step_is_repeated(cassandra_db, monkeypatch):
    job = make_job_record(run_in=NOW)
    writes_to_time_out(monkeypatch, "mail_pending")
    with pytest.raises(WriteTimeout):  # the end step fails: the reaper repeats it
        outbox.email_enqueue_once(job, "series_stopped")
    monkeypatch.undo()
    outbox.email_enqueue_once(job, "series_stopped")
    mails, pending = outbox_rows(job)
    assert mails == pending == ["series_stopped"]


def test_copies_that_drop_the_same_late_mail_say_so_once(cassandra_db):
    """Two copies of a "started" task read the row before either wrote: both find the
    outcome mailed and drop it, and the job's events say so once, not twice."""
    from jobs.models import MailState
    from jobs.store.events import job_events

    job = make_job_record(run_in=NOW)
    outbox.email_enqueue(job, "started")
    seen_by_first, seen_by_second = (
        JobMail.objects.filter(job_id=job.id, kind="started").first() for _ in range(2)
    )
    outbox._drop_late(job, seen_by_first)
    outbox._drop_late(job, seen_by_second)
    assert JobMail.objects.filter(job_id=job.id, kind="started").first().state == MailState.SUPERSEDED
    assert [e.kind for e in job_events(job.id)].count("email_dropped") == 1
