"""API keys: stored as a prefix and a keyed hash, issued by the emailed one-time link,
by manage.py api_key and in the admin, revoked in pairs."""

from __future__ import annotations

import io
import re

import pytest
from django.core import mail
from django.core.management import call_command

from jobs.mail.api_keys import key_link_send
from jobs.mail.suppression import address_hash, suppression_add
from jobs.models import ApiKey, ApiKeyRequest
from jobs.store.api_keys import api_key_create, api_key_find, api_key_revoke

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])


def test_only_a_prefix_and_a_keyed_hash_are_kept(cassandra_db):
    keys = api_key_create(email="ada@example.org")
    assert keys.read_write.startswith("imw_") and keys.read_only.startswith("imr_")
    assert keys.webhook_secret.startswith("whsec_") and len(keys.read_write) == 44
    rows = list(ApiKey.objects.all())
    stored = " ".join(
        str(getattr(row, name)) for row in rows for name in ApiKey._columns if name != "webhook_secret"
    )
    assert keys.read_write not in stored and keys.read_only not in stored
    assert {row.prefix for row in rows} == {keys.read_write[:12], keys.read_only[:12]}
    assert api_key_find(keys.read_write).scope == "rw" and api_key_find(keys.read_only).scope == "ro"
    assert api_key_find(keys.read_write[:-1] + ("A" if keys.read_write[-1] != "A" else "B")) is None


def test_revoking_one_key_revokes_its_pair(cassandra_db):
    keys = api_key_create(email="ada@example.org")
    other = api_key_create(email="ada@example.org")
    assert api_key_revoke(keys.read_only[:12])
    assert api_key_find(keys.read_write) is None and api_key_find(keys.read_only) is None
    assert api_key_find(other.read_write) is not None
    assert not api_key_revoke("imw_00000000")


def test_the_command_prints_three_values_and_revokes(cassandra_db):
    out = io.StringIO()
    call_command("api_key", "create", "--email", "ada@example.org", stdout=out)
    lines = out.getvalue().split()
    assert len(lines) == 3 and lines[0].startswith("imr_") and lines[1].startswith("whsec_")
    assert lines[-1].startswith("imw_") and api_key_find(lines[-1]).email == "ada@example.org"
    call_command("api_key", "revoke", lines[-1][:12], stderr=io.StringIO())
    assert api_key_find(lines[-1]) is None and api_key_find(lines[0]) is None


def _request_and_mail(client, email: str):
    response = client.post("/api/keys/", {"email": email})
    assert response.status_code == 200 and "a link is on its way" in response.content.decode()
    (row,) = list(ApiKeyRequest.objects.all())
    return row, key_link_send(str(row.id))


def test_the_emailed_link_shows_the_keys_once(client, cassandra_db):
    assert "Mail me a link" in client.get("/api/keys/").content.decode()
    row, sent = _request_and_mail(client, "ada@example.org")
    assert sent == "sent" and key_link_send(str(row.id)).startswith(
        "skipped"
    )  # a repeated task sends nothing
    (message,) = mail.outbox
    assert message.to == ["ada@example.org"] and "List-Unsubscribe" in message.extra_headers
    link = re.search(r"http://\S+/api/keys/\S+/", message.body).group(0)
    path = link.split("127.0.0.1:8000", 1)[-1]
    for _ in range(2):  # a mail scanner that follows the link makes nothing
        page = client.get(path).content.decode()
        assert "Show my API keys" in page and "imw_" not in page
    assert not list(ApiKey.objects.all())
    shown = client.post(path)
    keys = re.findall(r"<code>((?:imw|imr|whsec)_[^<]+)</code>", shown.content.decode())
    assert [k[:3] for k in keys] == ["imw", "imr", "whs"] and "no-store" in shown["Cache-Control"]
    assert client.get("/api/v1/jobs", HTTP_X_API_KEY=keys[0]).status_code == 200
    assert ApiKeyRequest.objects.get(id=row.id).email is None  # the keys keep the address, not the request
    again = client.post(path)
    assert again.status_code == 410 and "imw_" not in again.content.decode()
    assert client.get("/api/keys/forged-token/").status_code == 410


def test_a_suppressed_address_gets_no_mail_and_the_page_says_the_same(client, cassandra_db):
    suppression_add(address_hash=address_hash("ada@example.org"))
    _, sent = _request_and_mail(client, "Ada@Example.org")
    assert sent == "skipped: blocked" and not mail.outbox


def test_an_invalid_address_is_refused(client, cassandra_db):
    for data in ({"email": "not an address"}, {}):
        response = client.post("/api/keys/", data)
        assert response.status_code == 400 and "a link is on its way" not in response.content.decode()
    assert not list(ApiKeyRequest.objects.all())


def test_key_requests_are_rate_limited(client, cassandra_db, settings):
    settings.IMAGEDL_SUBMIT_RATE_PER_IP = "2/h"
    for _ in range(2):
        assert client.post("/api/keys/", {"email": "ada@example.org"}).status_code == 200
    limited = client.post("/api/keys/", {"email": "ada@example.org"})
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0


def test_operators_issue_and_revoke_in_the_admin(admin_client, cassandra_db):
    issued = admin_client.post("/admin/jobs/apikey/add/", {"email": "ada@example.org"})
    keys = re.findall(r"<code>((?:imw|imr|whsec)_[^<]+)</code>", issued.content.decode())
    assert len(keys) == 3 and api_key_find(keys[0]) is not None
    listing = admin_client.get("/admin/jobs/apikey/").content.decode()
    assert keys[0][:12] in listing and keys[0] not in listing and "active" in listing
    admin_client.post(f"/admin/jobs/apikey/{keys[0][:12]}/change/")
    assert (
        api_key_find(keys[0]) is None
        and "revoked" in admin_client.get("/admin/jobs/apikey/").content.decode()
    )
