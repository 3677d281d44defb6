"""The per-job event log: every step of a job, in Cassandra and in the app log.

``record_event`` is the one way to add an event; each call writes a ``JobEvent`` row
(with the personal-data TTL) and mirrors the line to the ``imagedl.jobs`` logger with
the job id in it, so the file log and the status page tell the same story.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable

from cassandra.util import uuid_from_time
from django.conf import settings

from jobs.models import JobEvent

logger = logging.getLogger("imagedl.jobs")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def personal_ttl_seconds() -> int:
    return settings.IMAGEDL_PERSONAL_TTL_DAYS * 86400


def record_event(
    job_id: uuid.UUID, kind: str, message: str, *, level: str = "info", **data: object
) -> JobEvent:
    """Append one event to a job's log and mirror it to the application log."""
    if level not in _LEVELS:
        raise ValueError(f"unknown event level {level!r}")
    text_data = {key: str(value) for key, value in data.items() if value is not None}
    event = JobEvent.ttl(personal_ttl_seconds()).create(
        job_id=job_id,
        at=uuid_from_time(time.time()),
        kind=kind,
        level=level,
        message=message,
        data=text_data,
    )
    extras = " ".join(f"{k}={v}" for k, v in sorted(text_data.items()))
    logger.log(
        _LEVELS[level], "job=%s event=%s %s%s", job_id, kind, message, f" [{extras}]" if extras else ""
    )
    return event


def job_events(job_id: uuid.UUID, limit: int = 1000) -> list[JobEvent]:
    """A job's events, oldest first."""
    return list(JobEvent.objects.filter(job_id=job_id).limit(limit))


def delete_events(job_ids: Iterable[uuid.UUID]) -> None:
    for job_id in job_ids:
        JobEvent.objects.filter(job_id=job_id).delete()
