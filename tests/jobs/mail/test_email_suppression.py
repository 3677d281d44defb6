"""Every email offers "never email me again" (a link to a page with a button, and the
RFC 8058 one-click headers); a suppressed mailbox gets no more mail and cannot be
named in the form; no recipient gets more than the day's cap."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from jobs.mail.emails import email_build
from jobs.models import EmailSuppression
from jobs.store import records
from jobs.tasks import email_send
from tests.factories import good_post
from tests.factories import make_job as a_job

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])


def unsubscribe_link(message) -> str:
    return message.extra_headers["List-Unsubscribe"].strip("<>")


def test_every_email_carries_the_link_and_the_one_click_headers(cassandra_db):
    job = a_job(email="ada@example.org")
    for kind in ("accepted", "started", "failed"):
        message = email_build(job, kind)
        link = unsubscribe_link(message)
        assert re.fullmatch(r"http://127\.0\.0\.1:8000/unsubscribe/[^/]+", link), link
        assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert link in message.body
        assert link in message.alternatives[0][0] and "Never email me again" in message.alternatives[0][0]
        assert "ada" not in link  # the link names a keyed hash, not the address


def test_the_link_opens_a_page_with_a_button_and_only_a_post_suppresses(client, cassandra_db):
    job = a_job(email="ada@example.org")
    path = unsubscribe_link(email_build(job, "accepted")).removeprefix("http://127.0.0.1:8000")
    page = client.get(path)  # what a mail scanner does
    assert page.status_code == 200 and '<form method="post"' in page.content.decode()
    assert list(EmailSuppression.objects.all()) == []
    # A mail client's one-click unsubscribe: a POST without any CSRF token.
    one_click = Client(enforce_csrf_checks=True).post(path, {"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200 and "no more emails" in one_click.content.decode()
    rows = list(EmailSuppression.objects.all())
    assert len(rows) == 1 and "ada" not in rows[0].address_hash and "@" not in rows[0].address_hash
    assert client.get("/unsubscribe/forged").status_code == 404


def test_a_suppressed_mailbox_gets_no_more_mail_and_the_form_refuses_it(client, cassandra_db):
    job = a_job(email="ada@example.org")
    Client().post(unsubscribe_link(email_build(job, "accepted")).removeprefix("http://127.0.0.1:8000"))
    mail.outbox.clear()
    assert email_send(str(job.id), "started") == "skipped: suppressed"
    other_spelling = a_job(email='"ADA+again"@Example.org')
    assert email_send(str(other_spelling.id), "accepted") == "skipped: suppressed"
    assert mail.outbox == []
    response = client.post("/", good_post(email="Ada+x@example.org"))
    assert response.status_code == 200
    assert "asked us never to email it again" in " ".join(response.context["form"].errors["email"])
    assert client.post("/", good_post(email="bob@example.org")).status_code == 302


def test_no_recipient_gets_more_than_the_daily_cap(cassandra_db, settings):
    settings.IMAGEDL_MAILS_PER_RECIPIENT_PER_DAY = 2
    jobs = [a_job(email="busy@example.org"), a_job(email="BUSY+2@example.org")]
    mail.outbox.clear()
    answers = [email_send(str(job.id), kind) for job in jobs for kind in ("accepted", "started")]
    assert answers == ["sent", "sent", "skipped: daily_cap", "skipped: daily_cap"]
    assert len(mail.outbox) == 2
    events = [e.kind for e in records_events(jobs[1].id)]
    assert events.count("email_daily_cap") == 2
    assert email_send(str(a_job(email="calm@example.org").id), "accepted") == "sent"  # others are not held
    settings.IMAGEDL_MAILS_PER_RECIPIENT_PER_DAY = 0  # no cap
    assert email_send(str(jobs[0].id), "ready") == "sent"  # (each mail goes once: a new one)


def records_events(job_id):
    from jobs.store.events import job_events

    return job_events(job_id, limit=50)


def test_the_job_goes_on_when_its_mail_is_held(cassandra_db):
    job = a_job(email="ada@example.org")
    Client().post(unsubscribe_link(email_build(job, "accepted")).removeprefix("http://127.0.0.1:8000"))
    email_send(str(job.id), "accepted")
    assert records.job_get(job.id).status == "scheduled"
