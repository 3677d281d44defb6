"""Signed webhooks: a job's events POSTed to the address its API request gave.

Standard Webhooks (https://www.standardwebhooks.com/): every try of one event carries
the same ``webhook-id``, a fresh ``webhook-timestamp`` and ``webhook-signature:
v1,<base64 HMAC-SHA256>`` made with the mailbox's ``whsec_`` secret (the
``standardwebhooks`` package signs). The body is ``{"type", "timestamp", "data"}``.

Delivery goes through an outbox like the mails (``jobs.store.webhooks``): an event is
enqueued once per event id, claimed before each try, sent once; a failure or a non-2xx
answer is tried again after IMAGEDL_WEBHOOK_RETRY_SECONDS (the receiver's longer
``Retry-After`` wins), then given up and noted on the job. A ``410 Gone`` turns the
key's webhooks off. The POST goes through the download chokepoint's address rule
(``downloader.http.post_checked``), so a name that now resolves to a private address
is refused at send time too.

``webhook_on_event`` hears every recorded event (registered in ``JobsConfig.ready()``
through ``jobs.store.events.event_observer_register``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

from django.conf import settings
from django.utils import timezone
from standardwebhooks import Webhook

from downloader.config import fetch_policy_from_settings
from downloader.http import FetchPolicy, PostResult, Resolver, post_checked, system_resolver
from jobs.lib import links, scheduling
from jobs.lib.utc import aware_utc
from jobs.models import Job, JobStatus, WebhookDelivery, WebhookState, WebhookTarget
from jobs.store import records
from jobs.store.api_keys import api_key_get, api_key_webhooks_off
from jobs.store.events import event_record
from jobs.store.queues import queue_buckets, queue_mark_advance
from jobs.store.webhooks import (
    deliveries_pending,
    delivery_claim,
    delivery_create,
    delivery_finish,
    delivery_get,
    delivery_unlist,
    webhook_target_get,
)

logger = logging.getLogger("imagedl.jobs")

SEND_TASK = "jobs.tasks.webhook_send"
WEBHOOK_QUEUE = "webhook_pending"
TIMEOUT_SECONDS = 10.0
MAX_BODY_BYTES = 20 * 1024
# The job's event kinds (jobs.store.events) that are sent, and their webhook types.
EVENT_TYPES = {
    "scheduled": "job.scheduled",
    "started": "job.started",
    "done": "job.ready",
    "failed": "job.failed",
    "cancelled": "job.cancelled",
    "series_stopped": "series.stopped",
}
_NAMESPACE = uuid.UUID("5b0f8d4e-8f3c-4b7e-9d55-2a8e3c6f1a10")


def event_id_for(job: Job, event_type: str) -> str:
    """The ``webhook-id`` of one event of one job: the same whoever computes it, so a
    repeated step enqueues nothing new (an operator's retry is a new generation)."""
    return "msg_" + uuid.uuid5(_NAMESPACE, f"{job.id}:{job.generation or 1}:{event_type}").hex


def webhook_data(job: Job) -> dict[str, object]:
    """What every event says of its job: id, status, counts and, once ready, the
    download link, its size and expiry."""
    expires = records.download_expires_at(job)
    ready = job.status == JobStatus.DONE and expires is not None
    return {
        "job_id": str(job.id),
        "series_id": str(job.series_id) if job.series_id else None,
        "status": job.status,
        "requested_count": job.requested_count,
        "found_count": job.found_count or 0,
        "downloaded_count": job.downloaded_count or 0,
        "rejected_count": job.rejected_count or 0,
        "download_url": links.download_url(job.id, expires) if ready else None,
        "archive_bytes": (job.archive_bytes or 0) if ready else None,
        "expires_at": expires.isoformat() if ready else None,
        "error": job.error if job.status == JobStatus.FAILED else None,
    }


def _payload(job: Job, event_type: str) -> str:
    body = {"type": event_type, "timestamp": timezone.now().isoformat(), "data": webhook_data(job)}
    text = json.dumps(body, separators=(",", ":"))
    if len(text.encode()) > MAX_BODY_BYTES:  # an error text cannot make it larger than this
        body["data"]["error"] = None  # type: ignore[index]
        text = json.dumps(body, separators=(",", ":"))
    return text


def webhook_target_of(job: Job) -> WebhookTarget | None:
    """Where the job's events go: its own address, else its series'."""
    return webhook_target_get(job.id) or webhook_target_get(job.series_id)


def webhook_enqueue(job: Job, event_type: str) -> bool:
    """Put one event of the job in the outbox and queue its sending; False when the
    job has no webhook or the event was enqueued already."""
    if webhook_target_of(job) is None:
        return False
    event_id = event_id_for(job, event_type)
    if not delivery_create(job.id, event_id, event_type, _payload(job, event_type)):
        return False
    _queue(job.id, event_id)
    return True


def webhook_catch_up(job_id: uuid.UUID) -> None:
    """Enqueue every event the job has had so far, once the address is stored: the
    events recorded before then found no address (a run that starts at once can
    start before it is stored). Events enqueued already are not enqueued again."""
    job = records.job_get(job_id)
    if job is None:
        return
    happened = ["job.scheduled"]
    if job.started_at is not None:
        happened.append("job.started")
    finished = {
        JobStatus.DONE: "job.ready",
        JobStatus.FAILED: "job.failed",
        JobStatus.CANCELLED: "job.cancelled",
    }
    if job.status in finished:
        happened.append(finished[job.status])
    for event_type in happened:
        webhook_enqueue(job, event_type)


def _queue(job_id: uuid.UUID, event_id: str, delay: float = 0, tries: int = 0) -> None:
    name = f"webhook-{event_id}" + (f"-{tries}" if tries else "")
    if not delay:
        scheduling.queue_at(name, SEND_TASK, (str(job_id), event_id), group="webhooks")
        return
    scheduling.schedule_once(
        name, SEND_TASK, (str(job_id), event_id), timezone.now() + dt.timedelta(seconds=delay)
    )


def webhook_on_event(
    job_id: uuid.UUID, kind: str, created: Job | None = None, known: Job | None = None
) -> None:
    """The event observer: a job's event that has a webhook type is enqueued.

    ``created``: the event came with the job's creation. Its own address can only be
    stored after that (``jobs.api.submit`` stores it, then ``webhook_catch_up``), so only
    a series' address can apply: a job of no series costs no read here. ``known``: the
    job as the event's writer holds it; its addresses are looked up first, and the job
    is read for the payload only when it has one (most jobs have none: one read)."""
    event_type = EVENT_TYPES.get(kind)
    if event_type is None:
        return
    if created is not None and created.series_id is None:
        return
    if created is None and known is not None and webhook_target_of(known) is None:
        return
    job = created if created is not None else records.job_get(job_id)
    if job is not None:
        webhook_enqueue(job, event_type)


# --- sending ------------------------------------------------------------------------


def webhook_send(job_id: str, event_id: str, *, resolver: Resolver = system_resolver) -> str:
    """Try one delivery, at most once at a time and never after it succeeded."""
    job = records.job_get(job_id)
    row = delivery_get(job.id, event_id) if job is not None else None
    if job is None or row is None:
        return "skipped: no such delivery"
    claim = delivery_claim(row)
    if claim is None:
        return f"skipped: {row.state}"
    target = webhook_target_of(job)
    key = api_key_get(target.key_prefix) if target is not None else None
    if target is None or key is None or not key.is_active or key.webhooks_off_at is not None:
        delivery_finish(row, claim, WebhookState.DISABLED, reason="webhooks_off")
        return "skipped: webhooks off"
    result = post_checked(
        target.url, row.payload.encode(), _headers(row, key.webhook_secret), _policy(), resolver
    )
    return _after_try(job, row, claim, result, key.prefix)


def _headers(row: WebhookDelivery, secret: str) -> dict[str, str]:
    now = timezone.now()
    return {
        "webhook-id": row.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(row.event_id, now, row.payload),
    }


def _policy() -> FetchPolicy:
    return fetch_policy_from_settings(
        total_timeout=TIMEOUT_SECONDS,
        connect_timeout=min(settings.IMAGEDL_CONNECT_TIMEOUT, TIMEOUT_SECONDS),
        read_timeout=TIMEOUT_SECONDS,
        max_redirects=0,
    )


def _after_try(job: Job, row: WebhookDelivery, claim: uuid.UUID, result: PostResult, prefix: str) -> str:
    tries = (row.tries or 0) + 1
    seen = {"tries": tries, "last_status": result.status or None, "reply": result.reply or None}
    if 200 <= result.status < 300:
        delivery_finish(row, claim, WebhookState.SENT, reason=None, **seen)
        event_record(job.id, "webhook_sent", f"Delivered the {row.type} webhook", event_type=row.type)
        return "sent"
    if result.status == 410:
        api_key_webhooks_off(prefix)
        delivery_finish(row, claim, WebhookState.DISABLED, reason="gone", **seen)
        event_record(job.id, "webhook_gone", "The webhook receiver answered 410 Gone: webhooks are off")
        return "gone"
    reason = result.reason or f"http_{result.status}"
    if result.reason == "private_address" or tries > len(settings.IMAGEDL_WEBHOOK_RETRY_SECONDS):
        delivery_finish(row, claim, WebhookState.FAILED, reason=reason, **seen)
        event_record(
            job.id,
            "webhook_failed",
            f"Gave up on the {row.type} webhook ({reason})",
            level="warning",
            reason=reason,
        )
        return f"gave up ({reason})"
    delay = max(settings.IMAGEDL_WEBHOOK_RETRY_SECONDS[tries - 1], result.retry_after or 0)
    next_try = timezone.now() + dt.timedelta(seconds=delay)
    delivery_finish(row, claim, WebhookState.PENDING, reason=reason, next_try_at=next_try, **seen)
    _queue(job.id, row.event_id, delay, tries)
    return f"retry in {delay:g}s ({reason})"


# --- the reaper's part ----------------------------------------------------------------


def _delivery_overdue(row, now: dt.datetime, grace: dt.timedelta) -> bool:
    """Whether a try should have been made more than ``grace`` ago: a sending claim's
    end, or a pending row's next try (its creation for the first)."""
    if row.state == WebhookState.SENDING:
        due = aware_utc(row.claim_until)
    else:
        due = aware_utc(row.next_try_at) or aware_utc(row.created_at)
    return due is not None and due + grace < now


def webhooks_reap(*, now: dt.datetime | None = None) -> int:
    """Queue again the tries nobody is making: a delivery pending more than
    IMAGEDL_REAPER_GRACE_SECONDS past its time, or sending under a claim that ran out
    that long ago (its task was lost, or its worker died). A copy of a try that was
    only late is harmless: the claim lets one send. Returns how many were queued."""
    now = now or timezone.now()
    grace = dt.timedelta(seconds=settings.IMAGEDL_REAPER_GRACE_SECONDS)
    queued = 0
    oldest_left = None
    for bucket in queue_buckets(WEBHOOK_QUEUE, now, now=now):
        for listed in deliveries_pending(bucket):
            row = delivery_get(listed.job_id, listed.event_id)
            if row is None or row.state in WebhookState.DONE:
                delivery_unlist(bucket, listed.job_id, listed.event_id)
                continue
            oldest_left = oldest_left or bucket
            if _delivery_overdue(row, now, grace):
                args = (str(row.job_id), row.event_id)
                scheduling.queue_at(f"webhook-{row.event_id}-reaped", SEND_TASK, args, group="webhooks")
                queued += 1
    queue_mark_advance(WEBHOOK_QUEUE, oldest_left, until=now, now=now)
    return queued
