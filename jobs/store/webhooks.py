"""The webhook outbox's rows: where a job's events go, and each delivery's state.

``jobs.core.webhooks`` decides what is sent and when; this module knows the tables
(``webhook_target``, ``webhook_delivery``) and the lightweight transactions that make a
delivery go out once per event id however often its task runs.
"""

from __future__ import annotations

import datetime as dt
import uuid

from cassandra.cqlengine.query import LWTException
from django.utils import timezone

from jobs.lib.utc import aware_utc, naive_utc
from jobs.models import WebhookDelivery, WebhookPending, WebhookState, WebhookTarget
from jobs.store.cassandra import execute, prepared
from jobs.store.events import personal_ttl_seconds
from jobs.store.queues import LEGACY_BUCKET, queue_bucket

CLAIM_SECONDS = 60  # a sender holding a claim this long has died (the POST takes at most 10 s)


def webhook_target_set(subject_id: uuid.UUID, *, url: str, key_prefix: str) -> None:
    """Send the events of a job (or a series) to ``url``, signed with that key's secret."""
    WebhookTarget.ttl(personal_ttl_seconds()).create(
        subject_id=subject_id, url=url, key_prefix=key_prefix, created_at=timezone.now()
    )


def webhook_target_get(subject_id: uuid.UUID | None) -> WebhookTarget | None:
    if subject_id is None:
        return None
    return WebhookTarget.objects.filter(subject_id=subject_id).first()


def webhook_target_forget(subject_id: uuid.UUID) -> None:
    """The purge: the URL goes with the job's other personal data."""
    WebhookTarget.objects(subject_id=subject_id).delete()


def delivery_create(job_id: uuid.UUID, event_id: str, event_type: str, payload: str) -> bool:
    """Put one event in the outbox, once: False when that event id is there already."""
    bucket = queue_bucket()
    try:
        WebhookDelivery.if_not_exists().ttl(personal_ttl_seconds()).create(
            job_id=job_id,
            listed_in=bucket,
            event_id=event_id,
            type=event_type,
            payload=payload,
            state=WebhookState.PENDING,
            created_at=timezone.now(),
        )
    except LWTException:
        return False
    WebhookPending.create(bucket=bucket, job_id=job_id, event_id=event_id)
    return True


def deliveries_pending(bucket: str) -> list[WebhookPending]:
    """The listing rows of one bucket's deliveries not done yet (the reaper's)."""
    return list(WebhookPending.objects.filter(bucket=bucket).limit(None))


def delivery_unlist(bucket: str | None, job_id: uuid.UUID, event_id: str) -> None:
    WebhookPending.objects(bucket=bucket or LEGACY_BUCKET, job_id=job_id, event_id=event_id).delete()


def delivery_get(job_id: uuid.UUID, event_id: str) -> WebhookDelivery | None:
    return WebhookDelivery.objects.filter(job_id=job_id, event_id=event_id).first()


def deliveries_of_job(job_id: uuid.UUID) -> list[WebhookDelivery]:
    """A job's deliveries, oldest first (the status page, the API)."""
    rows = list(WebhookDelivery.objects.filter(job_id=job_id).limit(100))
    return sorted(rows, key=lambda row: row.created_at)


def delivery_claim(row: WebhookDelivery) -> uuid.UUID | None:
    """Take the row for this sender: pending, or sending under a claim that ran out."""
    now = timezone.now()
    if row.state in WebhookState.DONE:
        return None
    until = aware_utc(row.claim_until)
    if row.state == WebhookState.SENDING and until is not None and until > now:
        return None
    claim = uuid.uuid4()
    result = execute(
        prepared(
            f"UPDATE {WebhookDelivery.column_family_name()} SET state = ?, claimed_by = ?, claim_until = ? "  # noqa: S608
            "WHERE job_id = ? AND event_id = ? IF state = ? AND claimed_by = ?"
        ),
        (
            WebhookState.SENDING,
            claim,
            naive_utc(now + dt.timedelta(seconds=CLAIM_SECONDS)),
            row.job_id,
            row.event_id,
            row.state,
            row.claimed_by,
        ),
    )
    return claim if result.was_applied else None


def delivery_finish(row: WebhookDelivery, claim: uuid.UUID, state: str, **values: object) -> bool:
    """Move a claimed row on (sent, failed, disabled, or back to pending for a retry)."""
    changes = {"state": state, **values}
    if state == WebhookState.SENT:
        changes["sent_at"] = timezone.now()
    names = list(changes)
    result = execute(
        prepared(
            f"UPDATE {WebhookDelivery.column_family_name()} SET {', '.join(f'{n} = ?' for n in names)} "  # noqa: S608
            "WHERE job_id = ? AND event_id = ? IF claimed_by = ?"
        ),
        (*(naive_utc(v) for v in changes.values()), row.job_id, row.event_id, claim),
    )
    if result.was_applied and state in WebhookState.DONE:
        delivery_unlist(row.listed_in, row.job_id, row.event_id)
    return bool(result.was_applied)
