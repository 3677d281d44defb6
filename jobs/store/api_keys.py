"""API keys: issued in threes, found by prefix, checked by a keyed hash, revoked.

A mailbox gets a read-write key (``imw_…``), a read-only key (``imr_…``) and a webhook
secret (``whsec_…``). A key is its visible prefix (``imw_`` and 8 characters) followed
by 32 secret characters; only the prefix and an HMAC-SHA256 of the whole key (keyed
from SECRET_KEY) are kept, so a stolen table opens nothing. A presented key is looked
up by its prefix and its hash compared in constant time.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import string
import uuid
from dataclasses import dataclass

from cassandra.cqlengine.query import LWTException
from django.conf import settings
from django.utils import timezone

from jobs.lib.mailboxes import mailbox_owner
from jobs.lib.utc import naive_utc
from jobs.models import ApiIdempotency, ApiKey, ApiKeyList, ApiKeyRequest, ApiScope, Job, JobByOwner
from jobs.store.cassandra import execute, prepared

SALT = "imagedl.api-key.v1"
PREFIXES = {ApiScope.READ_WRITE: "imw_", ApiScope.READ_ONLY: "imr_"}
PREFIX_CHARS = 8
PREFIX_LENGTH = 4 + PREFIX_CHARS  # imw_ and 8 characters
SECRET_CHARS = 32
_ALPHABET = string.ascii_letters + string.digits
REQUEST_TTL_SECONDS = 86400  # a key request's row and address
LINK_MAX_AGE_SECONDS = 3600  # its emailed link


@dataclass(frozen=True)
class IssuedKeys:
    """What a person is shown once: the two keys and the webhook secret."""

    read_write: str
    read_only: str
    webhook_secret: str


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def key_hash(raw: str) -> str:
    key = hashlib.sha256((SALT + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, raw.encode(), hashlib.sha256).hexdigest()


def key_prefix(raw: str) -> str | None:
    """The visible prefix of a presented key, or None when it cannot be one of ours."""
    head = raw[:4]
    if head not in PREFIXES.values() or len(raw) != 4 + PREFIX_CHARS + SECRET_CHARS:
        return None
    if not all(ch in _ALPHABET for ch in raw[4:]):
        return None
    return raw[:PREFIX_LENGTH]


def webhook_secret_make() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _key_write(scope: str, owner: str, email: str, now: object, **extra: object) -> str:
    raw = PREFIXES[scope] + _random(PREFIX_CHARS + SECRET_CHARS)
    prefix = raw[:PREFIX_LENGTH]
    ApiKey.if_not_exists().create(
        prefix=prefix,
        scope=scope,
        key_hash=key_hash(raw),
        owner=owner,
        email=email,
        created_at=now,
        **extra,
    )
    ApiKeyList.create(bucket="all", created_at=now, prefix=prefix)
    return raw


def api_key_create(*, email: str) -> IssuedKeys:
    """Issue a read-write key, a read-only key and a webhook secret for the mailbox of
    ``email``. The raw values are returned once and never stored."""
    now = naive_utc(timezone.now())
    owner = mailbox_owner(email)
    secret = webhook_secret_make()
    read_write = _key_write(ApiScope.READ_WRITE, owner, email, now, webhook_secret=secret)
    read_only = _key_write(ApiScope.READ_ONLY, owner, email, now, pair_prefix=read_write[:PREFIX_LENGTH])
    ApiKey.objects(prefix=read_write[:PREFIX_LENGTH]).update(pair_prefix=read_only[:PREFIX_LENGTH])
    return IssuedKeys(read_write=read_write, read_only=read_only, webhook_secret=secret)


def api_key_get(prefix: str) -> ApiKey | None:
    return ApiKey.objects.filter(prefix=prefix).first()


def api_key_find(raw: str) -> ApiKey | None:
    """The active key ``raw`` is, or None (unknown, wrong, or revoked)."""
    prefix = key_prefix(raw)
    if prefix is None:
        return None
    row = api_key_get(prefix)
    if row is None or not hmac.compare_digest(row.key_hash, key_hash(raw)):
        return None
    return row if row.is_active else None


def api_key_revoke(prefix: str) -> bool:
    """Revoke a key (and the one issued with it: they share a mailbox and a secret),
    forgetting the address it delivered to. False when no such key exists."""
    row = api_key_get(prefix)
    if row is None:
        return False
    now = naive_utc(timezone.now())
    for each in filter(None, (prefix, row.pair_prefix)):
        ApiKey.objects(prefix=each).update(revoked_at=now, email=None)
    return True


def api_keys_list(limit: int = 500) -> list[ApiKey]:
    """Keys newest first, for the admin (from the one small listing partition)."""
    prefixes = [r.prefix for r in ApiKeyList.objects.filter(bucket="all").limit(limit)]
    found = {k.prefix: k for k in ApiKey.objects.filter(prefix__in=prefixes)} if prefixes else {}
    return [found[p] for p in prefixes if p in found]


def api_key_webhooks_off(prefix: str) -> None:
    """A receiver answered 410 Gone: no more deliveries signed by this key."""
    ApiKey.objects(prefix=prefix).update(webhooks_off_at=naive_utc(timezone.now()))


# --- the emailed one-time link ----------------------------------------------------


def key_request_create(*, email: str) -> uuid.UUID:
    """Someone asked for keys for ``email``: the row the mail task reads."""
    row = ApiKeyRequest.ttl(REQUEST_TTL_SECONDS).create(email=email, created_at=timezone.now())
    return row.id


def key_request_get(request_id: uuid.UUID | str) -> ApiKeyRequest | None:
    try:
        key = request_id if isinstance(request_id, uuid.UUID) else uuid.UUID(str(request_id))
    except ValueError:
        return None
    return ApiKeyRequest.objects.filter(id=key).first()


def key_request_move(request_id: uuid.UUID, *, from_states: tuple[str, ...], to: str) -> bool:
    """Move a request's state in a lightweight transaction; False when it was not in
    one of ``from_states`` (a repeated task, a link used already)."""
    marks = ", ".join("?" * len(from_states))
    result = execute(
        prepared(
            f"UPDATE {ApiKeyRequest.column_family_name()} SET state = ? WHERE id = ? IF state IN ({marks})"  # noqa: S608
        ),
        (to, request_id, *from_states),
    )
    return bool(result.was_applied)


def key_request_redeem(request_id: uuid.UUID) -> IssuedKeys | None:
    """Use the one-time link: the keys of its mailbox, once; None the second time."""
    row = key_request_get(request_id)
    if row is None or not row.email:
        return None
    if not key_request_move(row.id, from_states=("pending", "sending", "sent"), to="used"):
        return None
    keys = api_key_create(email=row.email)
    ApiKeyRequest.objects(id=row.id).update(email=None)  # the keys keep it; the request need not
    return keys


# --- what a mailbox owns ------------------------------------------------------------


def owner_has_job(owner: str, job: Job) -> bool:
    """Whether the job is one of the mailbox's (its listing row exists)."""
    rows = JobByOwner.objects.filter(owner=owner, created_at=job.created_at, job_id=job.id)
    return rows.first() is not None


def owner_jobs(
    owner: str, *, limit: int, before: tuple[dt.datetime, uuid.UUID] | None = None
) -> list[JobByOwner]:
    """The mailbox's listing rows newest first, after the cursor ``(created_at, job_id)``."""
    rows = JobByOwner.objects.filter(owner=owner)
    if before is not None:
        rows = rows.filter(created_at__lte=before[0])
    wanted = []
    for row in rows.limit(limit + 50):
        if before is not None and row.created_at == before[0] and row.job_id <= before[1]:
            continue
        wanted.append(row)
        if len(wanted) >= limit:
            break
    return wanted


def idempotency_claim(prefix: str, idempotency_key: str, job_id: uuid.UUID) -> uuid.UUID:
    """The job id of this Idempotency-Key: ``job_id`` when this request is the first
    (a lightweight transaction), else the first request's."""
    try:
        ApiIdempotency.if_not_exists().ttl(86400).create(
            key_prefix=prefix, idempotency_key=idempotency_key, job_id=job_id, created_at=timezone.now()
        )
        return job_id
    except LWTException as exc:
        return exc.existing["job_id"]


def idempotency_set(prefix: str, idempotency_key: str, job_id: uuid.UUID | None) -> None:
    """Point an Idempotency-Key at the job it made, or forget it (None: the request
    failed, so a retry may make the job)."""
    row = ApiIdempotency.objects(key_prefix=prefix, idempotency_key=idempotency_key)
    if job_id is None:
        row.delete()
    else:
        row.ttl(86400).update(job_id=job_id)
