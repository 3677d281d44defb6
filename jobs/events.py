"""The per-job event log: every step of a job, in Cassandra and in the app log.

``record_event`` is the one way to add an event; each call writes a ``JobEvent`` row
(with the personal-data TTL) and mirrors the line to the ``imagedl.jobs`` logger with
the job id in it, so the file log and the status page tell the same story.
"""

from __future__ import annotations

import logging
import time
import uuid

from cassandra.query import UNSET_VALUE
from cassandra.util import uuid_from_time
from django.conf import settings

from jobs.cassandra import write_together
from jobs.models import JobEvent

logger = logging.getLogger("imagedl.jobs")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def personal_ttl_seconds() -> int:
    return settings.IMAGEDL_PERSONAL_TTL_DAYS * 86400


def _as_text(data: dict[str, object]) -> dict[str, str]:
    """An event's data as stored and logged: text values, absent ones dropped."""
    return {key: str(value) for key, value in data.items() if value is not None}


def event_write(
    job_id: uuid.UUID, kind: str, message: str, *, level: str = "info", **data: object
) -> tuple[str, tuple]:
    """The CQL write of one event (for a batch with other writes); see record_event."""
    if level not in _LEVELS:
        raise ValueError(f"unknown event level {level!r}")
    text_data = _as_text(data)
    cql = (
        f"INSERT INTO {JobEvent.column_family_name()} (job_id, at, kind, level, message, data) "  # noqa: S608
        "VALUES (?, ?, ?, ?, ?, ?) USING TTL ?"
    )
    at = uuid_from_time(time.time())
    return cql, (job_id, at, kind, level, message, text_data or UNSET_VALUE, personal_ttl_seconds())


def log_event(job_id: uuid.UUID, kind: str, message: str, *, level: str = "info", **data: object) -> None:
    """Mirror an event that was written to the application log."""
    text_data = _as_text(data)
    extras = " ".join(f"{k}={v}" for k, v in sorted(text_data.items()))
    logger.log(
        _LEVELS[level], "job=%s event=%s %s%s", job_id, kind, message, f" [{extras}]" if extras else ""
    )


def record_event(job_id: uuid.UUID, kind: str, message: str, *, level: str = "info", **data: object) -> None:
    """Append one event to a job's log and mirror it to the application log."""
    write_together([event_write(job_id, kind, message, level=level, **data)])
    log_event(job_id, kind, message, level=level, **data)


def job_events(job_id: uuid.UUID, limit: int = 1000) -> list[JobEvent]:
    """A job's events, oldest first."""
    return list(JobEvent.objects.filter(job_id=job_id).limit(limit))
