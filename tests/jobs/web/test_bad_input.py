"""Bad input gets a clear error and stores nothing: an address whose domain is an IP
literal or whose local part is quoted is refused by the form and by the service every
entry point goes through. Mail subjects are plain text. The form answers a suppressed
address exactly as any other (it must not tell who unsubscribed)."""

from __future__ import annotations

import pytest
from django_q.models import Schedule

from jobs.core import services
from jobs.mail import suppression
from jobs.mail.emails import email_build
from jobs.models import Job
from jobs.store import records
from tests.factories import good_post, job_fields, make_job

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def nothing_stored() -> bool:
    return (
        not list(Job.objects.all().limit(5)) and not Schedule.objects.filter(name__startswith="job-").exists()
    )


REFUSED = ["user@[127.0.0.1]", "user@[IPv6:::1]", '"user name"@example.org', '"user"@example.org']


@pytest.mark.parametrize("address", REFUSED)
def test_the_form_refuses_ip_literal_domains_and_quoted_local_parts(cassandra_db, client, address):
    response = client.post("/", good_post(email=address))
    assert response.status_code == 200
    errors = response.context["form"].errors["email"]
    assert errors and (
        "IP address" in errors[0] or "quotes" in errors[0] or "like name@example.org" in errors[0]
    ), errors
    assert nothing_stored()


@pytest.mark.parametrize("address", REFUSED)
def test_the_submit_service_refuses_them_for_every_entry_point(cassandra_db, address):
    with pytest.raises(ValueError, match="address"):
        services.job_submit(**job_fields(email=address))
    assert not list(Job.objects.all().limit(5))


def test_mail_subjects_are_plain_text(cassandra_db):
    job = make_job(query="cats & dogs <3")
    message = email_build(records.job_get(job.id), "accepted")
    assert "cats & dogs <3" in message.subject and "&amp;" not in message.subject


def test_the_form_answers_a_suppressed_address_as_any_other(cassandra_db, client):
    suppression.suppression_add(address_hash=suppression.address_hash("quiet@example.org"))
    quiet = client.post("/", good_post(email="quiet@example.org"))
    other = client.post("/", good_post(email="loud@example.org"))
    assert quiet.status_code == other.status_code == 302
    quiet_page = client.get(quiet["Location"]).content.decode().replace("quiet@", "X@")
    other_page = client.get(other["Location"]).content.decode().replace("loud@", "X@")
    assert quiet_page.count("<p") == other_page.count("<p") and "never to email" not in quiet_page
