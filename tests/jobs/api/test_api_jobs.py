"""The JSON API through Django's test client: keys and scopes, submission validated by
the form, problem details, another mailbox's jobs, Idempotency-Key, limits, listing,
cancel, manifest and series."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from django.test import Client

from jobs.mail.emails import email_build
from jobs.models import ApiIdempotency, JobStatus, SeriesStatus
from jobs.store import records
from jobs.store.api_keys import api_key_create, api_key_revoke
from jobs.store.series import series_get
from tests import suite_node
from tests.factories import make_done_job
from tests.racing import race

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])
PROBLEM = "application/problem+json"


@pytest.fixture
def ada(cassandra_db):
    return api_key_create(email="ada@example.org")


@pytest.fixture
def grace(cassandra_db):
    return api_key_create(email="grace@example.org")


def post(client, path: str, body: dict | None = None, key: str = "", **headers: str):
    extra = {"HTTP_X_API_KEY": key} if key else {}
    extra.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    return client.post(f"/api/v1{path}", json.dumps(body or {}), content_type="application/json", **extra)


def get(client, path: str, key: str = "", **extra: str):
    return (
        client.get(f"/api/v1{path}", HTTP_X_API_KEY=key, **extra)
        if key
        else client.get(f"/api/v1{path}", **extra)
    )


def test_a_query_and_a_count_make_a_whole_request(client, ada):
    response = post(client, "/jobs", {"query": "red fox", "count": 10}, ada.read_write)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == JobStatus.SCHEDULED and body["requested_count"] == 10
    assert response["Location"] == body["links"]["self"] and body["links"]["self"].endswith(
        f"/api/v1/jobs/{body['id']}"
    )
    job = records.job_get(body["id"])
    assert job.email == "ada@example.org" and job.query == "red fox" and job.time_zone == "UTC"


def test_bearer_works_and_a_wrong_revoked_or_missing_key_is_401(client, ada, grace):
    assert get(client, "/jobs", HTTP_AUTHORIZATION=f"Bearer {ada.read_only}").status_code == 200
    api_key_revoke(grace.read_write[:12])
    for key in ("", ada.read_write[:-1] + "x", "imw_nonsense", grace.read_write, grace.read_only):
        response = get(client, "/jobs", key)
        assert response.status_code == 401 and response["Content-Type"] == PROBLEM
        assert response.json()["status"] == 401 and response.json()["title"]


def test_a_session_cookie_is_not_an_api_key(client, ada, admin_user):
    client.force_login(admin_user)
    assert get(client, "/jobs").status_code == 401
    assert post(client, "/jobs", {"query": "owls", "count": 1}).status_code == 401  # and no CSRF error either


def test_a_read_only_key_may_only_read(client, ada):
    response = post(client, "/jobs", {"query": "owls", "count": 3}, ada.read_only)
    assert response.status_code == 403 and response["Content-Type"] == PROBLEM
    made = post(client, "/jobs", {"query": "owls", "count": 3}, ada.read_write).json()
    assert get(client, f"/jobs/{made['id']}", ada.read_only).status_code == 200
    assert post(client, f"/jobs/{made['id']}/cancel", key=ada.read_only).status_code == 403


def test_another_mailboxs_job_is_404_never_403(client, ada, grace):
    made = post(client, "/jobs", {"query": "owls", "count": 3}, ada.read_write).json()
    for attempt in (
        get(client, f"/jobs/{made['id']}", grace.read_write),
        post(client, f"/jobs/{made['id']}/cancel", key=grace.read_write),
        get(client, f"/jobs/{made['id']}/manifest", grace.read_write),
        get(client, "/jobs/not-a-uuid", grace.read_write),
    ):
        assert attempt.status_code == 404 and attempt["Content-Type"] == PROBLEM
    assert get(client, "/jobs", grace.read_write).json()["items"] == []
    assert records.job_get(made["id"]).status == JobStatus.SCHEDULED


def test_the_forms_rules_come_back_as_field_errors(client, ada):
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)).isoformat()
    cases = [
        ({"query": "owls", "count": 0}, "count"),
        ({"query": "owls", "count": 501}, "count"),
        ({"count": 5}, "query"),
        ({"query": "owls", "page_url": "https://example.org/", "count": 5}, "page_url"),
        ({"query": "owls", "count": 5, "run_at": past}, "run_at"),
        ({"query": "owls", "count": 5, "run_at": "2030-01-01T10:00:00"}, "run_at"),
        ({"query": "owls", "count": 5, "time_zone": "Mars/Olympus"}, "time_zone"),
        ({"query": "owls", "count": 5, "engine": "altavista"}, "engine"),
        ({"query": "owls", "count": 5, "filters": {"colour": "plaid"}}, "filters.colour"),
        ({"query": "owls", "count": 5, "filters": {"smell": "any"}}, "filters"),
        ({"query": "owls", "count": "many"}, "count"),
        ({"query": "owls\u200b", "count": 5}, "query"),
        ({"query": "owls", "count": 5, "pack": "tarball"}, "pack"),
    ]
    for body, field in cases:
        response = post(client, "/jobs", body, ada.read_write)
        assert response.status_code == 422, (body, response.content)
        problem = response.json()
        assert response["Content-Type"] == PROBLEM and problem["status"] == 422
        assert field in problem["errors"], (body, problem)
    assert get(client, "/jobs", ada.read_write).json()["items"] == []


def test_the_layout_is_asked_as_in_the_form(client, ada):
    body = post(client, "/jobs", {"query": "owls", "count": 5, "pack": "parquet"}, ada.read_write).json()
    assert body["pack"] == "parquet" and records.job_get(body["id"]).pack == "parquet"
    plain = post(client, "/jobs", {"query": "owls", "count": 5}, ada.read_write).json()
    assert plain["pack"] == "zip" and records.job_get(plain["id"]).pack == "zip"


def test_a_run_time_with_an_offset_is_kept_in_its_zone(client, ada):
    when = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(days=2)
    body = {"query": "owls", "count": 5, "run_at": when.isoformat(), "time_zone": "Asia/Tokyo"}
    made = post(client, "/jobs", body, ada.read_write).json()
    assert dt.datetime.fromisoformat(made["run_at"]) == when and made["time_zone"] == "Asia/Tokyo"


def test_an_idempotency_key_replays_the_first_job(client, ada):
    body = {"query": "owls", "count": 5}
    first = post(client, "/jobs", body, ada.read_write, **{"Idempotency-Key": "order-7"})
    again = post(client, "/jobs", body, ada.read_write, **{"Idempotency-Key": "order-7"})
    other = post(client, "/jobs", body, ada.read_write, **{"Idempotency-Key": "order-8"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert other.json()["id"] != first.json()["id"]
    assert len(get(client, "/jobs", ada.read_write).json()["items"]) == 2


def test_a_refused_request_leaves_its_idempotency_key_free(client, ada):
    bad = post(client, "/jobs", {"query": "owls", "count": 0}, ada.read_write, **{"Idempotency-Key": "k1"})
    assert bad.status_code == 422 and not list(ApiIdempotency.objects.filter(key_prefix=ada.read_write[:12]))
    good = post(client, "/jobs", {"query": "owls", "count": 2}, ada.read_write, **{"Idempotency-Key": "k1"})
    assert good.status_code == 201


def test_each_key_has_its_rate(client, ada, grace, settings):
    settings.IMAGEDL_API_RATE_PER_KEY = "3/m"
    for _ in range(3):
        assert get(client, "/jobs", ada.read_only).status_code == 200
    limited = get(client, "/jobs", ada.read_only)
    assert limited.status_code == 429 and limited["Content-Type"] == PROBLEM
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert get(client, "/jobs", grace.read_only).status_code == 200


def test_the_forms_limits_apply(client, ada, settings):
    settings.IMAGEDL_SUBMIT_RATE_PER_EMAIL = "2/h"
    for _ in range(2):
        assert post(client, "/jobs", {"query": "owls", "count": 1}, ada.read_write).status_code == 201
    limited = post(client, "/jobs", {"query": "owls", "count": 1}, ada.read_write)
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0


def test_listing_pages_newest_first(client, ada):
    made = [
        post(client, "/jobs", {"query": f"owl {n}", "count": 1}, ada.read_write).json()["id"]
        for n in range(5)
    ]
    seen, cursor = [], ""
    while True:
        page = get(client, f"/jobs?limit=2{'&cursor=' + cursor if cursor else ''}", ada.read_only).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == made[::-1]
    assert get(client, "/jobs?cursor=bogus", ada.read_only).status_code == 400


def test_cancel_then_cancel_again(client, ada):
    made = post(client, "/jobs", {"query": "owls", "count": 1}, ada.read_write).json()
    cancelled = post(client, f"/jobs/{made['id']}/cancel", key=ada.read_write)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == JobStatus.CANCELLED
    again = post(client, f"/jobs/{made['id']}/cancel", key=ada.read_write)
    assert again.status_code == 409 and again["Content-Type"] == PROBLEM


def test_a_done_job_has_its_download_and_manifest(client, ada):
    job = make_done_job(images=3, email="ada@example.org")
    detail = get(client, f"/jobs/{job.id}", ada.read_only).json()
    assert detail["status"] == "done" and detail["progress"] == 100
    assert detail["download"]["bytes"] == job.archive_bytes and "/download" in detail["download"]["url"]
    assert dt.datetime.fromisoformat(detail["download"]["expires_at"]) > dt.datetime.now(dt.UTC)
    assert [e["kind"] for e in detail["events"]][:2] == ["scheduled", "started"]
    manifest = get(client, f"/jobs/{job.id}/manifest", ada.read_only).json()
    assert [i["file"] for i in manifest["images"]] == [
        "red-fox_0001.jpg",
        "red-fox_0002.jpg",
        "red-fox_0003.jpg",
    ]
    assert all(len(i["sha256"]) == 64 and i["width"] == 300 for i in manifest["images"])
    scheduled = post(client, "/jobs", {"query": "owls", "count": 1}, ada.read_write).json()
    assert get(client, f"/jobs/{scheduled['id']}/manifest", ada.read_only).status_code == 409


def test_a_form_job_of_the_same_mailbox_is_the_keys_too(client, ada):
    job = make_done_job(images=1, email="ADA+news@Example.org")
    assert get(client, f"/jobs/{job.id}", ada.read_only).status_code == 200


def test_series_list_read_and_stop(client, ada, grace):
    made = post(client, "/jobs", {"query": "owls", "count": 2, "repeat": "week"}, ada.read_write).json()
    series_id = made["series_id"]
    assert series_id and made["links"]["series"].endswith(f"/api/v1/series/{series_id}")
    listed = get(client, "/series", ada.read_only).json()["items"]
    assert [s["id"] for s in listed] == [series_id] and listed[0]["every"] == "week"
    assert get(client, f"/series/{series_id}", grace.read_only).status_code == 404
    assert post(client, f"/series/{series_id}/stop", key=ada.read_only).status_code == 403
    stopped = post(client, f"/series/{series_id}/stop", key=ada.read_write).json()
    assert stopped["status"] == "stopped" and stopped["stop_reason"] == "user"
    assert records.job_get(made["id"]).status == JobStatus.CANCELLED


def test_a_series_made_with_a_key_starts_active_without_a_link_to_confirm(client, ada):
    made = post(client, "/jobs", {"query": "owls", "count": 2, "repeat": "day"}, ada.read_write).json()
    series = series_get(uuid.UUID(made["series_id"]))
    assert series.status == SeriesStatus.ACTIVE and series.confirmed_at is not None
    assert series.confirm_by is None and series.purge_due_at is None
    first = records.job_get(made["id"])
    assert not first.held
    accepted = email_build(first, "accepted")
    assert "/confirm/" not in accepted.body and not accepted.subject.startswith("Confirm")


def test_a_private_webhook_target_is_refused(client, ada):
    for url in (
        "http://127.0.0.1:9/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest",
        "ftp://example.org/",
    ):
        response = post(client, "/jobs", {"query": "owls", "count": 1, "webhook_url": url}, ada.read_write)
        assert response.status_code == 422 and "webhook_url" in response.json()["errors"], url
    assert get(client, "/jobs", ada.read_write).json()["items"] == []


@pytest.mark.slow
def test_while_cassandra_is_down_the_api_answers_503_with_retry_after(client, ada, suite_cassandra):
    suite_node.stop()
    try:
        response = get(client, "/jobs", ada.read_only)
        assert response.status_code == 503 and response["Content-Type"] == PROBLEM
        assert int(response["Retry-After"]) > 0 and response.json()["status"] == 503
    finally:
        suite_node.ensure_up()
    assert get(client, "/jobs", ada.read_only).status_code == 200


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_racing_requests_with_one_idempotency_key_make_one_job(ada):
    def one_request():
        return post(
            Client(), "/jobs", {"query": "owls", "count": 2}, ada.read_write, **{"Idempotency-Key": "race"}
        )

    answers = race(one_request, 4)
    made = {a.json()["id"] for a in answers if a.status_code == 201}
    assert {a.status_code for a in answers} <= {201, 409} and len(made) == 1
    assert [item["id"] for item in get(Client(), "/jobs", ada.read_only).json()["items"]] == list(made)


@pytest.mark.browser
@pytest.mark.imitation(total=20)
def test_the_manifest_of_a_real_run_is_its_zips_row_for_row(client, ada, imitation):
    import zipfile
    from io import BytesIO

    from downloader.choices import Filters
    from downloader.manifest import MANIFEST_JSONL
    from jobs.core.run import job_run
    from tests.factories import make_job, stored_archive

    job = make_job(email="ada@example.org", requested_count=4, filters=Filters(layout="wide"))
    assert job_run(job.id) == "done: 4"
    with zipfile.ZipFile(BytesIO(stored_archive(records.job_get(job.id)))) as archive:
        rows = [json.loads(line) for line in archive.read(MANIFEST_JSONL).decode().splitlines()]
    answer = get(client, f"/jobs/{job.id}/manifest", ada.read_only)
    assert answer.status_code == 200, answer.content
    assert answer.json()["images"] == rows  # every field, typed as the schema says
    assert {row["filters"] for row in rows} == {"layout=wide"} and all(row["caption"] for row in rows)
