"""Signed, expiring links for emails and pages.

A job id alone opens nothing: every public URL carries a token signed with SECRET_KEY
that names the job and what the link is for. Status links live as long as the job's
data (run time + personal-data TTL); download links expire when the archive is purged.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "imagedl.links.v1"
PURPOSES = ("status", "download", "resubmit")


class LinkError(Exception):
    """The token is forged, tampered with, for another purpose, or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "invalid" or "expired"


def token_make(job_id: uuid.UUID, purpose: str, expires_at: dt.datetime | None = None) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown link purpose {purpose!r}")
    payload: dict[str, object] = {"j": job_id.hex, "p": purpose}
    if expires_at is not None:
        payload["e"] = int(expires_at.timestamp())
    return signing.dumps(payload, salt=SALT, compress=True)


def token_read(token: str, purpose: str, now: dt.datetime | None = None) -> uuid.UUID:
    """Return the job id a token names, or raise LinkError."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.IMAGEDL_PERSONAL_TTL_DAYS * 86400)
    except signing.SignatureExpired:
        raise LinkError("expired") from None
    except signing.BadSignature:
        raise LinkError("invalid") from None
    if not isinstance(payload, dict) or payload.get("p") != purpose:
        raise LinkError("invalid")
    expires = payload.get("e")
    if expires is not None:
        current = now or dt.datetime.now(dt.UTC)
        if current.timestamp() > int(expires):
            raise LinkError("expired")
    try:
        return uuid.UUID(hex=str(payload["j"]))
    except (KeyError, ValueError):
        raise LinkError("invalid") from None


def token_read_lapsed(token: str, purpose: str) -> uuid.UUID | None:
    """The job an expired (but genuine) token of ``purpose`` names, else None: the
    expired page offers to run the same search again."""
    try:
        return token_read(token, purpose, now=dt.datetime.fromtimestamp(0, dt.UTC))
    except LinkError:
        return None


def absolute(path: str) -> str:
    return settings.IMAGEDL_BASE_URL + path


def status_url(job_id: uuid.UUID) -> str:
    return absolute(reverse("jobs:status", args=[token_make(job_id, "status")]))


def cancel_url(job_id: uuid.UUID) -> str:
    return absolute(reverse("jobs:cancel", args=[token_make(job_id, "status")]))


def download_url(job_id: uuid.UUID, expires_at: dt.datetime) -> str:
    return absolute(reverse("jobs:download", args=[token_make(job_id, "download", expires_at)]))


def resubmit_url(job_id: uuid.UUID) -> str:
    return absolute(reverse("jobs:resubmit", args=[token_make(job_id, "resubmit")]))


# --- a recurring series' links -------------------------------------------------------
# They name the series, not a job, and what they are for: its page, stopping it (the
# mails' "stop" link and List-Unsubscribe, which open nothing else), confirming it
# (double opt-in). They work while the series' data is kept (the view answers "gone"
# once it is purged). Tokens made before purposes existed count as page and stop links.
SERIES_SALT = "imagedl.series.v1"
SERIES_PURPOSES = ("page", "stop", "confirm")
LEGACY_SERIES_PURPOSES = ("page", "stop")


def series_token_make(
    series_id: uuid.UUID, purpose: str = "page", expires_at: dt.datetime | None = None
) -> str:
    if purpose not in SERIES_PURPOSES:
        raise ValueError(f"unknown series link purpose {purpose!r}")
    payload: dict[str, object] = {"s": series_id.hex, "p": purpose}
    if expires_at is not None:
        payload["e"] = int(expires_at.timestamp())
    return signing.dumps(payload, salt=SERIES_SALT, compress=True)


def series_token_read(token: str, purpose: str = "page", now: dt.datetime | None = None) -> uuid.UUID:
    """The series id a token for ``purpose`` names, or raise LinkError ("invalid", or
    "expired" past the time it carries)."""
    try:
        payload = signing.loads(token, salt=SERIES_SALT)
        series_id = uuid.UUID(hex=str(payload["s"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise LinkError("invalid") from None
    made_for = payload.get("p")
    if made_for != purpose and not (made_for is None and purpose in LEGACY_SERIES_PURPOSES):
        raise LinkError("invalid")
    expires = payload.get("e")
    if expires is not None and (now or dt.datetime.now(dt.UTC)).timestamp() > int(expires):
        raise LinkError("expired")
    return series_id


def series_page_token(series_id: uuid.UUID, period_days: int) -> str:
    """A series' page link: it lives as long as the series' personal data would without
    another run (a period between runs plus the personal-data TTL); each mail carries a
    fresh one, and once the series is purged its page is gone anyway."""
    lifetime = dt.timedelta(days=period_days + settings.IMAGEDL_PERSONAL_TTL_DAYS)
    return series_token_make(series_id, "page", dt.datetime.now(dt.UTC) + lifetime)


def series_url(series_id: uuid.UUID, period_days: int) -> str:
    return absolute(reverse("jobs:series", args=[series_page_token(series_id, period_days)]))


def series_stop_url(series_id: uuid.UUID) -> str:
    return absolute(reverse("jobs:series_stop", args=[series_token_make(series_id, "stop")]))


def series_confirm_url(series_id: uuid.UUID) -> str:
    return absolute(reverse("jobs:series_confirm", args=[series_token_make(series_id, "confirm")]))
