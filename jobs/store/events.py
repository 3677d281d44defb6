"""The per-job event log: every step of a job, in Cassandra and in the app log.

``event_record`` is the one way to add an event; each call writes a ``JobEvent`` row
(with the personal-data TTL) and mirrors it to the ``imagedl.jobs`` logger: the job id,
the event's kind and its counts and codes, never its text. Messages can quote the query,
the page URL or an image URL, and log files outlive the purge.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from cassandra.query import UNSET_VALUE
from cassandra.util import uuid_from_time
from django.conf import settings

from jobs.lib.metrics import count_event
from jobs.models import Job, JobEvent
from jobs.store.cassandra import model_select, write_partition, write_together

logger = logging.getLogger("imagedl.jobs")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# Event data that may go to the log: numbers, and short codes under these keys.
_CODE_KEYS = {"engine", "reason", "error", "email", "by", "kind"}
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def personal_ttl_seconds() -> int:
    return settings.IMAGEDL_PERSONAL_TTL_DAYS * 86400


def _as_text(data: dict[str, object]) -> dict[str, str]:
    """An event's data as stored and logged: text values, absent ones dropped."""
    return {key: str(value) for key, value in data.items() if value is not None}


def event_write(
    job_id: uuid.UUID,
    kind: str,
    message: str,
    *,
    level: str = "info",
    at: float | None = None,
    **data: object,
) -> tuple[str, tuple]:
    """The CQL write of one event (for a batch with other writes); see event_record.
    ``at``: its time (seconds since the epoch), now unless given."""
    if level not in _LEVELS:
        raise ValueError(f"unknown event level {level!r}")
    text_data = _as_text(data)
    cql = (
        f"INSERT INTO {JobEvent.column_family_name()} (job_id, at, kind, level, message, data) "  # noqa: S608
        "VALUES (?, ?, ?, ?, ?, ?) USING TTL ?"
    )
    stamp = uuid_from_time(time.time() if at is None else at)
    return cql, (job_id, stamp, kind, level, message, text_data or UNSET_VALUE, personal_ttl_seconds())


def _loggable(key: str, value: object) -> bool:
    if isinstance(value, bool | int | float):
        return True
    return key in _CODE_KEYS and isinstance(value, str) and _CODE.fullmatch(value) is not None


def event_log(
    job_id: uuid.UUID,
    kind: str,
    message: str,
    *,
    level: str = "info",
    known: Job | None = None,
    **data: object,
) -> None:
    """Mirror an event to the application log: its job id, kind, numbers and codes.
    The message stays out (it is in Cassandra, purged with the job). Then the
    metrics count it (``jobs.lib.metrics.count_event``) and the observers registered
    from above hear of it (``event_observer_register``; ``known``: the job as the
    writer of the event holds it)."""
    _event_log_line(job_id, kind, level, data)
    _observers_tell(job_id, kind, None, known)


def event_log_created(job: Job, kind: str, message: str, **data: object) -> None:
    """``event_log`` for the event written with the job's creation (``records.job_create``):
    the observers are handed the new job, so they need not read it back."""
    _event_log_line(job.id, kind, "info", data)
    _observers_tell(job.id, kind, job, job)


def _event_log_line(job_id: uuid.UUID, kind: str, level: str, data: dict[str, object]) -> None:
    extras = " ".join(f"{k}={v}" for k, v in sorted(data.items()) if _loggable(k, v))
    logger.log(_LEVELS[level], "job=%s event=%s%s", job_id, kind, f" {extras}" if extras else "")
    count_event(kind, data)


# ``observer(job_id, kind, created, known)``: ``created`` is the job when the event was
# written with its creation (its first), else None; ``known`` the job as the event's
# writer holds it (None when it gave none), for what does not change (its series).
EventObserver = Callable[[uuid.UUID, str, "Job | None", "Job | None"], None]
_observers: dict[str, EventObserver] = {}


def event_observer_register(name: str, observer: EventObserver) -> None:
    """Call ``observer(job_id, kind, created, known)`` after each event of any job is recorded
    (the webhooks, registered in ``JobsConfig.ready()``). It must be quick for kinds it
    ignores; its failures are logged and never undo the event."""
    _observers[name] = observer


def _observers_tell(job_id: uuid.UUID, kind: str, created: Job | None, known: Job | None) -> None:
    for name, observer in _observers.items():
        try:
            observer(job_id, kind, created, known)
        except Exception as exc:
            logger.warning("job=%s: the %s observer failed (%s)", job_id, name, type(exc).__name__)


def job_error_log(job_id: uuid.UUID, exc: BaseException) -> None:
    """Log an unexpected failure for operators: the exception's type and where it was
    raised, frame by frame, without its message or locals (they can quote URLs and
    queries)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))
    logger.error("job=%s failed: %s at %s", job_id, type(exc).__name__, where or "?")


def event_record(
    job_id: uuid.UUID,
    kind: str,
    message: str,
    *,
    level: str = "info",
    known: Job | None = None,
    **data: object,
) -> None:
    """Append one event to a job's log and mirror it to the application log (``known``:
    the job as the caller holds it, handed to the observers)."""
    write_together([event_write(job_id, kind, message, level=level, **data)])
    event_log(job_id, kind, message, level=level, known=known, **data)


Event = tuple[str, str, dict[str, object]]  # kind, message, data (with "level" if not info)


def events_record(job_id: uuid.UUID, events: Sequence[Event]) -> None:
    """Append several events of one job at once, in their order: they share the job's
    partition, so they go as one request (an unlogged batch, one mutation), each a
    microsecond after the one before; then each is mirrored like ``event_record``'s."""
    start = time.time()
    write_partition(
        [
            event_write(job_id, kind, message, at=start + n * 1e-6, **data)
            for n, (kind, message, data) in enumerate(events)
        ]
    )
    for kind, message, data in events:
        event_log(job_id, kind, message, **data)


def job_events(job_id: uuid.UUID | str, limit: int = 1000) -> list[JobEvent]:
    """A job's events, oldest first (none for an id that is not one)."""
    try:
        key = job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))
    except ValueError:
        return []
    return model_select(JobEvent, "job_id = ? LIMIT ?", (key, limit))
