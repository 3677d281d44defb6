"""Webhooks in this process, each try called as its task would be: signed deliveries
verified by a receiver on loopback, retries with the same webhook-id, Retry-After,
giving up, 410 Gone, and the address rule at send time (a name that now resolves to a
private address)."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from django_q.models import OrmQ, Schedule

from jobs.core import services, webhooks
from jobs.models import QueueMark, WebhookDelivery, WebhookPending, WebhookState
from jobs.store import records
from jobs.store.api_keys import api_key_get
from jobs.store.events import job_events
from jobs.store.queues import bucket_of
from jobs.store.webhooks import (
    deliveries_of_job,
    webhook_target_forget,
    webhook_target_get,
    webhook_target_set,
)

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])


@pytest.fixture
def receiver(start_receiver):
    return start_receiver("127.0.0.61")


def submit(client, api_keys, url: str) -> dict:
    body = {"query": "red fox", "count": 3, "webhook_url": url}
    response = client.post(
        "/api/v1/jobs", json.dumps(body), content_type="application/json", HTTP_X_API_KEY=api_keys.read_write
    )
    assert response.status_code == 201, response.content
    return response.json()


def only_delivery(job_id) -> WebhookDelivery:
    (row,) = deliveries_of_job(job_id)
    return row


def test_a_delivery_is_signed_retried_with_one_id_and_sent_once(client, api_keys, receiver, settings):
    settings.IMAGEDL_WEBHOOK_RETRY_SECONDS = [5, 300]
    receiver.answers = lambda webhook_id, n: 500 if n <= 2 else 200
    made = submit(client, api_keys, receiver.url)
    row = only_delivery(made["id"])
    assert row.type == "job.scheduled" and OrmQ.objects.exists()  # queued for a worker
    assert webhooks.webhook_send(made["id"], row.event_id) == "retry in 5s (http_500)"
    retry = Schedule.objects.get(name=f"webhook-{row.event_id}-1")
    assert 3 <= (retry.next_run - dt.datetime.now(dt.UTC)).total_seconds() <= 6
    assert webhooks.webhook_send(made["id"], row.event_id) == "retry in 300s (http_500)"
    assert webhooks.webhook_send(made["id"], row.event_id) == "sent"
    assert webhooks.webhook_send(made["id"], row.event_id) == "skipped: sent"
    got = receiver.received
    assert [r.answered for r in got] == [500, 500, 200] and all(r.verified for r in got)
    assert {r.webhook_id for r in got} == {row.event_id} and row.event_id.startswith("msg_")
    body = got[-1].body
    assert body["type"] == "job.scheduled" and body["data"]["job_id"] == made["id"]
    assert body["data"]["status"] == "scheduled" and len(json.dumps(body)) < 20 * 1024
    assert got[-1].headers["webhook-signature"].startswith("v1,")
    done = only_delivery(made["id"])
    assert done.state == WebhookState.SENT and done.tries == 3 and done.last_status == 200
    page = client.get(made["links"]["status_page"].split("8000", 1)[-1]).content.decode()
    assert "job.scheduled" in page and "sent, 3 tries" in page


def test_the_jobs_events_are_enqueued_once_each(client, api_keys, receiver):
    made = submit(client, api_keys, receiver.url)
    job = records.job_get(made["id"])
    services.job_start_attempt(job)
    assert services.job_fail(job, "Nothing could be found")
    assert webhooks.webhook_enqueue(job, "job.failed") is False  # already there
    rows = {row.type: row for row in deliveries_of_job(job.id)}
    assert set(rows) == {"job.scheduled", "job.started", "job.failed"}
    assert webhooks.webhook_send(str(job.id), rows["job.failed"].event_id) == "sent"
    (failed,) = receiver.of_type("job.failed")
    assert failed.body["data"]["error"] == "Nothing could be found" and failed.verified


def test_a_job_without_an_address_costs_its_events_one_read_each_and_no_read_of_the_job(cassandra_db):
    """The observer looks up the addresses of the job its writer holds (its own: a job of
    no series has no other) and reads the job only when there is one."""
    from tests.factories import NOW, make_job
    from tests.statements import READ, StatementCount

    job = make_job(run_in=NOW)
    with StatementCount() as count:
        assert services.job_start_attempt(job) == 1
        assert services.job_fail(job, "Nothing could be found")
    assert count.of(READ, "job") == 0
    assert count.of(READ, "webhook_target") == 2  # "started", "failed"
    assert deliveries_of_job(job.id) == []


def test_a_receivers_retry_after_is_honoured(client, api_keys, receiver, settings):
    settings.IMAGEDL_WEBHOOK_RETRY_SECONDS = [5]
    receiver.answers = lambda webhook_id, n: 503
    receiver.retry_after = "120"
    made = submit(client, api_keys, receiver.url)
    row = only_delivery(made["id"])
    assert webhooks.webhook_send(made["id"], row.event_id) == "retry in 120s (http_503)"


def test_after_the_last_try_it_is_given_up_and_shown_on_the_job(client, api_keys, receiver, settings):
    settings.IMAGEDL_WEBHOOK_RETRY_SECONDS = [1]
    receiver.answers = lambda webhook_id, n: 500
    made = submit(client, api_keys, receiver.url)
    row = only_delivery(made["id"])
    webhooks.webhook_send(made["id"], row.event_id)
    assert webhooks.webhook_send(made["id"], row.event_id) == "gave up (http_500)"
    assert only_delivery(made["id"]).state == WebhookState.FAILED and only_delivery(made["id"]).reply == "ok"
    assert "webhook_failed" in [e.kind for e in job_events(row.job_id)]


def test_410_gone_turns_the_keys_webhooks_off(client, api_keys, receiver):
    receiver.answers = lambda webhook_id, n: 410
    first = submit(client, api_keys, receiver.url)
    row = only_delivery(first["id"])
    assert webhooks.webhook_send(first["id"], row.event_id) == "gone"
    assert api_key_get(api_keys.read_write[:12]).webhooks_off_at is not None
    second = submit(client, api_keys, receiver.url)
    later = only_delivery(second["id"])
    assert webhooks.webhook_send(second["id"], later.event_id) == "skipped: webhooks off"
    assert len(receiver.received) == 1 and only_delivery(second["id"]).state == WebhookState.DISABLED


def test_a_name_that_now_resolves_to_a_private_address_is_refused_at_send(client, api_keys, receiver):
    made = submit(client, api_keys, receiver.url)
    url = receiver.url.replace(receiver.address, "hooks.customer.test")
    webhook_target_set(records.job_get(made["id"]).id, url=url, key_prefix=api_keys.read_write[:12])
    row = only_delivery(made["id"])

    def rebound(host: str, port: int) -> list[str]:
        assert host == "hooks.customer.test"
        return ["10.1.2.3"]

    assert webhooks.webhook_send(made["id"], row.event_id, resolver=rebound) == "gave up (private_address)"
    assert receiver.received == [] and only_delivery(made["id"]).reason == "private_address"


def test_the_purge_forgets_the_webhook_address(client, api_keys, receiver):
    made = submit(client, api_keys, receiver.url)
    job = records.job_get(made["id"])
    services.job_purge(job)
    assert webhook_target_get(job.id) is None
    for row in deliveries_of_job(job.id):  # scheduled, and cancelled by the purge
        assert webhooks.webhook_send(str(job.id), row.event_id) == "skipped: webhooks off"
    assert receiver.received == []


def test_the_reaper_queues_again_a_try_whose_task_was_lost(client, api_keys, receiver, settings):
    made = submit(client, api_keys, receiver.url)
    row = only_delivery(made["id"])
    OrmQ.objects.all().delete()  # the broker lost the send task
    assert webhooks.webhooks_reap() == 0  # not late yet
    late = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.IMAGEDL_REAPER_GRACE_SECONDS + 5)
    assert webhooks.webhooks_reap(now=late) == 1 and OrmQ.objects.count() == 1
    assert webhooks.webhook_send(made["id"], row.event_id) == "sent"
    assert webhooks.webhooks_reap(now=late) == 0  # done: no longer listed


def test_deliveries_are_listed_by_the_bucket_they_were_made_in(client, api_keys, receiver, settings):
    made = submit(client, api_keys, receiver.url)
    row = only_delivery(made["id"])
    listed = [(p.bucket, p.event_id) for p in WebhookPending.objects.all() if p.job_id == row.job_id]
    assert listed == [(bucket_of(row.created_at), row.event_id)] and row.listed_in == listed[0][0]
    OrmQ.objects.all().delete()  # the broker lost the send task
    # A pass an hour later reads back from its watermark to the bucket that holds it.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert webhooks.webhooks_reap(now=later) == 1
    assert QueueMark.objects.filter(queue="webhook_pending").first().bucket <= row.listed_in
    assert webhooks.webhook_send(made["id"], row.event_id) == "sent"
    assert not [p for p in WebhookPending.objects.all() if p.job_id == row.job_id]


def test_a_slow_receiver_times_out_after_10_s_and_only_200_characters_are_kept(client, api_keys, receiver):
    receiver.reply = b"x" * 5000
    receiver.answers = lambda webhook_id, n: 500
    made = submit(client, api_keys, receiver.url)
    row = only_delivery(made["id"])
    webhooks.webhook_send(made["id"], row.event_id)
    assert only_delivery(made["id"]).reply == "x" * 200
    receiver.latency = 15
    started = time.monotonic()
    assert webhooks.webhook_send(made["id"], row.event_id).endswith("(timeout)")
    assert 9 <= time.monotonic() - started < 14


def test_a_series_sends_series_stopped_to_its_address(client, api_keys, receiver):
    body = {"query": "owls", "count": 2, "repeat": "day", "webhook_url": receiver.url}
    answer = client.post(
        "/api/v1/jobs", json.dumps(body), content_type="application/json", HTTP_X_API_KEY=api_keys.read_write
    )
    made = answer.json()
    stop = client.post(f"/api/v1/series/{made['series_id']}/stop", HTTP_X_API_KEY=api_keys.read_write)
    assert stop.status_code == 200
    rows = {row.type: row for row in deliveries_of_job(made["id"])}
    assert set(rows) == {"job.scheduled", "job.cancelled", "series.stopped"}
    assert webhooks.webhook_send(made["id"], rows["series.stopped"].event_id) == "sent"
    (stopped,) = receiver.of_type("series.stopped")
    assert stopped.verified and stopped.body["data"]["series_id"] == made["series_id"]


def test_a_series_next_run_is_announced_to_the_series_address(client, api_keys, receiver):
    body = {"query": "owls", "count": 2, "repeat": "week", "webhook_url": receiver.url}
    answer = client.post(
        "/api/v1/jobs", json.dumps(body), content_type="application/json", HTTP_X_API_KEY=api_keys.read_write
    )
    first = records.job_get(answer.json()["id"])
    services.job_start_attempt(first)
    assert services.job_fail(first, "Nothing could be found")
    series = client.get(f"/api/v1/series/{first.series_id}", HTTP_X_API_KEY=api_keys.read_only).json()
    second = series["next_job_id"]
    assert second != str(first.id)
    assert [row.type for row in deliveries_of_job(records.job_get(second).id)] == ["job.scheduled"]


def test_events_before_the_address_was_stored_are_caught_up(client, api_keys, receiver):
    made = submit(client, api_keys, receiver.url)
    job = records.job_get(made["id"])
    services.job_start_attempt(job)
    webhook_target_forget(job.id)
    assert services.job_fail(job, "Nothing could be found")  # heard with no address: nothing enqueued
    assert [row.type for row in deliveries_of_job(job.id)] == ["job.scheduled", "job.started"]
    webhook_target_set(job.id, url=receiver.url, key_prefix=api_keys.read_write[:12])
    webhooks.webhook_catch_up(job.id)
    assert sorted(row.type for row in deliveries_of_job(job.id)) == [
        "job.failed",
        "job.scheduled",
        "job.started",
    ]
