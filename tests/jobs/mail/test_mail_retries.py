"""A mail server that refuses for an hour costs each mail its retries, not the
recipient's day: retries keep their count across the reaper's copies, the daily cap
counts a mail once, and every mail goes out once when the server is back."""

from __future__ import annotations

import datetime as dt

import pytest

from jobs.core.reaper import jobs_reap
from jobs.lib import scheduling
from jobs.mail import outbox
from jobs.models import JobMail, MailState
from tests.clock import SimulatedClock, run_due_tasks
from tests.factories import make_job
from tests.mailserver import MailServer

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])


def mail_states(jobs) -> list[str]:
    return [JobMail.objects.filter(job_id=job.id, kind="accepted").first().state for job in jobs]


def test_an_hour_of_refused_mail_then_each_mail_is_sent_once(cassandra_db, settings, monkeypatch):
    settings.IMAGEDL_REAPER_GRACE_SECONDS = 120
    settings.IMAGEDL_EMAIL_RETRY_SECONDS = 30
    settings.IMAGEDL_EMAIL_MAX_TRIES = 8
    settings.IMAGEDL_MAILS_PER_RECIPIENT_PER_DAY = 20
    server = MailServer()  # not started: connections are refused
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = server.host, server.port, 5
    clock = SimulatedClock(monkeypatch)
    # Their runs come later than this test looks: only their "accepted" mails move.
    jobs = [
        make_job(email="ada@example.org", query=f"owls {n}", run_in=dt.timedelta(hours=3)) for n in range(3)
    ]
    handlers = {scheduling.EMAIL_TASK: outbox.email_send}
    try:
        for minute in range(100):
            if minute == 60:
                server.start()
            run_due_tasks(clock, handlers)
            jobs_reap(now=clock.now)
            clock.advance(minutes=1)
        assert mail_states(jobs) == [MailState.SENT] * 3
        subjects = [str(message["Subject"]) for message in server.messages_to("ada@example.org")]
        assert len(subjects) == 3
    finally:
        server.stop()
