"""Bounded series: how many live (pending or active) series one mailbox, one client
address (an IPv6 client per /64) and everybody together may hold; past a limit the
form answers 400 naming it and stores nothing. A series also stops by itself when
its mail cannot reach its address: unsubscribed or suppressed, the daily cap on two
runs in a row, or a mail server that refuses the address for good (5xx at RCPT)."""

from __future__ import annotations

import pytest
from django.core import mail

from jobs.mail import outbox, suppression
from jobs.models import JobMail, MailState, Series, SeriesStatus
from jobs.series.services import series_stop
from jobs.store import records
from jobs.store.events import job_events
from jobs.store.series import series_get
from tests.factories import deliver_run as deliver
from tests.factories import good_post
from tests.factories import submit_series as submit
from tests.mailserver import MailServer

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _live() -> list[Series]:
    return [s for s in Series.objects.all() if s.status in (SeriesStatus.PENDING, SeriesStatus.ACTIVE)]


def _post(client, email: str, address: str = "203.0.113.7"):
    return client.post("/", good_post(email=email, repeat="day", count="10"), REMOTE_ADDR=address)


def _send_mails(job) -> None:
    """Send the job's queued mails, as the email task would."""
    for row in JobMail.objects.filter(job_id=job.id):
        if row.state == MailState.PENDING:
            outbox.email_send(str(job.id), row.kind)


def _run(job, first: int):
    """A run of the series as a worker does it, its mails sent as they are queued."""
    done = deliver(job, first=first, on_started=_send_mails)  # its "started" mail goes out meanwhile
    _send_mails(done)
    return done


def _refused(response, words: str) -> None:
    assert response.status_code == 400
    errors = response.context["form"].errors["repeat"]
    assert any(words in error for error in errors), errors


def test_one_mailbox_holds_at_most_its_share_of_series_in_any_spelling(cassandra_db, client, settings):
    settings.IMAGEDL_MAX_SERIES_PER_MAILBOX = 3
    for spelling in ("lin@example.org", "Lin@Example.org", "lin+owls@example.org"):
        assert _post(client, spelling, address="203.0.113.1").status_code == 302
    _refused(_post(client, "LIN@EXAMPLE.ORG", address="203.0.113.2"), "3 recurring series")
    assert len(_live()) == 3  # nothing stored
    series_stop(_live()[0])  # a stopped series frees its place
    assert _post(client, "lin@example.org", address="203.0.113.3").status_code == 302


def test_one_client_holds_at_most_its_share_of_series_an_ipv6_client_per_64(cassandra_db, client, settings):
    settings.IMAGEDL_MAX_SERIES_PER_IP = 2
    assert _post(client, "a@example.org", address="2001:db8:1:2::10").status_code == 302
    assert _post(client, "b@example.org", address="2001:db8:1:2:ffff::9").status_code == 302
    _refused(_post(client, "c@example.org", address="2001:db8:1:2::77"), "2 recurring series")
    assert _post(client, "c@example.org", address="2001:db8:1:3::1").status_code == 302  # another /64
    assert len(_live()) == 3


def test_all_clients_together_hold_at_most_the_sites_share(cassandra_db, client, settings):
    settings.IMAGEDL_MAX_ACTIVE_SERIES = 2
    assert _post(client, "a@example.org", address="203.0.113.1").status_code == 302
    assert _post(client, "b@example.org", address="203.0.113.2").status_code == 302
    _refused(_post(client, "c@example.org", address="203.0.113.3"), "2 recurring series")
    assert len(_live()) == 2
    # One-off jobs are not series: they stay open.
    assert client.post("/", good_post(email="c@example.org"), REMOTE_ADDR="203.0.113.3").status_code == 302


def test_a_suppressed_address_stops_its_series_without_a_mail(cassandra_db):
    job = submit(email="lin@example.org")
    suppression.suppression_add(address_hash=suppression.address_hash("lin@example.org"))
    mail.outbox.clear()
    deliver(job)
    series = series_get(job.series_id)
    assert series.status == SeriesStatus.STOPPED and series.stop_reason == "unsubscribed"
    assert not [m for m in mail.outbox if "stopped" in m.subject]


def test_the_daily_cap_on_two_runs_in_a_row_stops_the_series(cassandra_db, settings):
    job = deliver(submit(email="lin@example.org"))
    series = series_get(job.series_id)
    assert series.is_active
    settings.IMAGEDL_MAILS_PER_RECIPIENT_PER_DAY = 1
    _send_mails(job)  # today's share is used: every later mail is held back
    second = _run(records.job_get(series.next_job_id), first=10)
    assert "email_daily_cap" in {e.kind for e in job_events(second.id)}
    assert series_get(series.id).is_active  # one run capped: not yet
    third = _run(records.job_get(series_get(series.id).next_job_id), first=20)
    series = series_get(series.id)
    assert series.status == SeriesStatus.STOPPED and series.stop_reason == "mail_capped"
    assert "email_daily_cap" in {e.kind for e in job_events(third.id)}


def test_a_mail_server_refusing_the_address_for_good_stops_the_series(cassandra_db, settings):
    server = MailServer(refuse={"nobody@example.org": 550}).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    try:
        job = submit(email="nobody@example.org")
        _send_mails(job)
        row = JobMail.objects.filter(job_id=job.id, kind="accepted").first()
        assert row.state == MailState.FAILED  # not retried: the refusal is permanent
        refused = [e for e in job_events(job.id) if e.kind == "email_refused"]
        assert refused and "nobody@" not in refused[0].message + str(refused[0].data)
        deliver(job)
    finally:
        server.stop()
    series = series_get(job.series_id)
    assert series.status == SeriesStatus.STOPPED and series.stop_reason == "address_refused"
    assert series.next_run_at is None  # no run after it
