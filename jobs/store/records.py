"""Reading and writing job rows, keeping the lookup tables in step with ``job``.

The services in ``jobs.core.services`` decide *what* changes; this module knows *where* a
change must be written (``job`` plus ``job_by_day``/``job_day``) and how to read jobs
back newest first without scanning the table.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from jobs.lib.mailboxes import mailbox_owner
from jobs.lib.utc import aware_utc, naive_utc, utc_day
from jobs.models import Job, JobActive, JobByDay, JobByOwner, JobDay, JobImage
from jobs.store.cassandra import execute, model_select, prepared, update_if, write_partition, write_together
from jobs.store.events import event_log_created, event_write, personal_ttl_seconds
from jobs.store.queues import queue_bucket

PERSONAL_FIELDS = ("email", "query", "page_url")


def job_create(
    *,
    first_event: tuple[str, str, dict] | None = None,
    claim: bool = False,
    also: Sequence[tuple[str, tuple]] = (),
    **fields: object,
) -> Job | None:
    """Insert a job, its listing rows and (optionally) its first event as one logged
    batch of prepared writes: all of them land or none does. (Table and column names
    in the CQL come from the models; every value is a bound parameter.)

    Personal fields get their own insert with a TTL, so only those cells expire.
    ``first_event`` is ``(kind, message, data)`` for jobs.store.events.
    ``also``: more prepared writes of the new job's for the same batch (its "accepted"
    mail's outbox rows, ``jobs.mail.outbox.email_outbox_writes``).

    ``claim`` (with a given ``id``): first insert the row's key in a lightweight
    transaction (``IF NOT EXISTS``) and write nothing more, returning None, when a job
    with that id exists already: two callers creating one job make it once.
    """
    from cassandra.query import UNSET_VALUE

    now = fields.pop("created_at", None) or timezone.now()
    assert isinstance(now, dt.datetime)
    personal = {name: fields.pop(name) for name in PERSONAL_FIELDS if name in fields}
    fields["active_bucket"] = queue_bucket(fields.get("run_at"))  # type: ignore[arg-type]
    job = Job(created_at=now, **fields)
    job.validate()
    if claim and not _claim_id(job):
        return None
    columns = [name for name in Job._columns if name not in PERSONAL_FIELDS]
    values = [naive_utc(getattr(job, name)) for name in columns]
    table = Job.column_family_name()
    writes: list[tuple[str, tuple]] = [
        (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",  # noqa: S608
            # Unset, not null or empty: no tombstone for what was never written.
            tuple(UNSET_VALUE if v is None or v == set() else v for v in values),
        )
    ]
    if personal:
        for name, value in personal.items():
            setattr(job, name, value)
        writes.append(
            (
                f"INSERT INTO {table} (id, email, query, page_url) VALUES (?, ?, ?, ?) USING TTL ?",  # noqa: S608
                (
                    job.id,
                    *(UNSET_VALUE if getattr(job, n) is None else getattr(job, n) for n in PERSONAL_FIELDS),
                    personal_ttl_seconds(),
                ),
            )
        )
    day = utc_day(now)
    writes.append(
        (
            f"INSERT INTO {JobByDay.column_family_name()} (day, created_at, job_id, status) "  # noqa: S608
            "VALUES (?, ?, ?, ?)",
            (day, naive_utc(job.created_at), job.id, job.status),
        )
    )
    writes.append((f"INSERT INTO {JobDay.column_family_name()} (bucket, day) VALUES (?, ?)", ("all", day)))  # noqa: S608
    active = f"INSERT INTO {JobActive.column_family_name()} (bucket, job_id) VALUES (?, ?)"  # noqa: S608
    writes.append((active, (job.active_bucket, job.id)))
    if job.email:
        writes.append(_owner_write(job))
    if first_event is not None:
        kind, message, data = first_event
        writes.append(event_write(job.id, kind, message, **data))
    writes.extend(also)
    write_together(writes)
    job._set_persisted()
    if first_event is not None:
        event_log_created(job, kind, message, **data)
    return job


def _owner_write(job: Job) -> tuple[str, tuple]:
    """The mailbox's listing row of a new job (what its API keys see)."""
    from cassandra.query import UNSET_VALUE

    cql = (
        f"INSERT INTO {JobByOwner.column_family_name()} (owner, created_at, job_id, series_id) "  # noqa: S608
        "VALUES (?, ?, ?, ?) USING TTL ?"
    )
    series = job.series_id if job.series_id is not None else UNSET_VALUE
    values = (mailbox_owner(job.email), naive_utc(job.created_at), job.id, series, personal_ttl_seconds())
    return cql, values


def _claim_id(job: Job) -> bool:
    result = execute(
        prepared(f"INSERT INTO {Job.column_family_name()} (id, created_at) VALUES (?, ?) IF NOT EXISTS"),  # noqa: S608
        (job.id, naive_utc(job.created_at)),
    )
    return bool(result.was_applied)


def job_get(job_id: uuid.UUID | str) -> Job | None:
    try:
        key = job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))
    except ValueError:
        return None
    found = model_select(Job, "id = ?", (key,))
    return found[0] if found else None


def job_update(job: Job, **changes: object) -> Job:
    """Write the given columns of a job. Status changes go through ``job_status_change``."""
    if "status" in changes:
        raise ValueError("status changes go through job_status_change")
    personal = {k: changes.pop(k) for k in PERSONAL_FIELDS if k in changes}
    if changes:
        Job.objects(id=job.id).update(**changes)
    if personal:
        Job.objects(id=job.id).ttl(personal_ttl_seconds()).update(**personal)
    for name, value in {**changes, **personal}.items():
        setattr(job, name, value)
    return job


ANY_RUN = object()  # ``run_is`` default: no condition on the job's run


def job_status_change(
    job: Job, status: str, *, only_from: tuple[str, ...], run_is: object = ANY_RUN, **changes: object
) -> bool:
    """Set the job's status, with other non-personal columns, only while its status is
    one of ``only_from`` (and, given ``run_is``, while that run owns the job): a
    lightweight transaction, so a cancel and the run finishing at the same moment
    cannot both win. Returns whether the change was made; when not, ``job.status`` is
    refreshed to what stands."""
    return job_write_if(job, {"status": status, **changes}, status_in=only_from, run_is=run_is)


def job_write_if(
    job: Job,
    changes: dict[str, object],
    *,
    status_in: tuple[str, ...] = (),
    run_is: object = ANY_RUN,
    lease_is: object = ANY_RUN,
) -> bool:
    """Write non-personal columns of the job in a lightweight transaction, only while
    its status is one of ``status_in`` (when given), its run is ``run_is`` (when
    given; None means no run yet) and its lease ends at ``lease_is`` (when given: a
    takeover of the very lease its caller saw run out, not of one renewed since)."""
    if any(name in PERSONAL_FIELDS for name in changes):
        raise ValueError("personal fields are written with their TTL, not here")
    conditions: list[tuple[str, tuple[object, ...]]] = []
    if status_in:
        sources = tuple(dict.fromkeys(status_in))
        conditions.append((f"status IN ({', '.join('?' * len(sources))})", sources))
    if run_is is not ANY_RUN:
        conditions.append(("run_id = ?", (run_is,)))
    if lease_is is not ANY_RUN:
        conditions.append(("lease_until = ?", (naive_utc(lease_is),)))
    values = {name: naive_utc(value) for name, value in changes.items()}
    result = update_if(Job.column_family_name(), job.id, values, conditions)
    if not result.was_applied:
        row = result.one() or {}
        job.status = row.get("status", job.status)  # (never the run: it stays the caller's own)
        return False
    for name, value in values.items():
        setattr(job, name, value)
    if "status" in changes:
        JobByDay.objects(day=utc_day(job.created_at), created_at=job.created_at, job_id=job.id).update(
            status=changes["status"]
        )
    return True


def job_requeue_mark(job: Job, *, previous: dt.datetime | None, now: dt.datetime) -> bool:
    """Note that the reaper queued the job's run at ``now``, only if nobody did since
    ``previous`` (its ``requeued_at`` as read): a lightweight transaction."""
    condition = ("requeued_at = ?", (naive_utc(previous),))
    result = update_if(Job.column_family_name(), job.id, {"requeued_at": naive_utc(now)}, [condition])
    if result.was_applied:
        job.requeued_at = naive_utc(now)
    return bool(result.was_applied)


def job_images_write(job_id: uuid.UUID, run_id: uuid.UUID, rows: Mapping[int, Mapping[str, object]]) -> None:
    """Store image rows of one run (``rows``: position -> columns) with the personal-data
    TTL, as one request: the rows share the job's partition, so they go as one unlogged
    batch, one mutation (each position at most once: two rows of one key in a batch
    would carry the same timestamp)."""
    from cassandra.query import UNSET_VALUE

    names = [name for name in JobImage._columns if name not in ("job_id", "run_id", "position")]
    for fields in rows.values():
        unknown = set(fields) - set(names)
        if unknown:
            raise ValueError(f"not image columns: {sorted(unknown)}")
    cql = (
        f"INSERT INTO {JobImage.column_family_name()} (job_id, run_id, position, {', '.join(names)}) "  # noqa: S608
        f"VALUES (?, ?, ?, {', '.join('?' * len(names))}) USING TTL ?"
    )
    ttl = personal_ttl_seconds()
    write_partition(
        [
            (cql, (job_id, run_id, position, *(_unset(fields.get(n), UNSET_VALUE) for n in names), ttl))
            for position, fields in sorted(rows.items())
        ]
    )


def _unset(value: object, unset: object) -> object:
    """A column not given is left unset (no tombstone), as cqlengine leaves it."""
    return unset if value is None else value


def job_images(job_id: uuid.UUID, limit: int = 1000, *, run_id: uuid.UUID | None = None) -> list[JobImage]:
    """The image rows of one run: ``run_id``, else the run the job row names now."""
    if run_id is None:
        job = job_get(job_id)
        run_id = job.run_id if job is not None else None
        if run_id is None:
            return []
    return list(JobImage.objects.filter(job_id=job_id, run_id=run_id).limit(limit))


@dataclass(frozen=True)
class Cursor:
    """Where the next page of the newest-first listing starts (exclusive)."""

    created_at: dt.datetime
    job_id: uuid.UUID

    def encode(self) -> str:
        return f"{int(aware_utc(self.created_at).timestamp() * 1000)}_{self.job_id.hex}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        millis, _, hexid = text.partition("_")
        try:
            created = dt.datetime.fromtimestamp(int(millis) / 1000, tz=dt.UTC).replace(tzinfo=None)
            return cls(created, uuid.UUID(hexid))
        except (ValueError, OverflowError):
            return None


@dataclass
class JobPage:
    jobs: list[Job]
    next_cursor: Cursor | None


def _as_date(value: object) -> dt.date:
    # cqlengine's Date column may hand back cassandra.util.Date.
    return value if isinstance(value, dt.date) else value.date()  # type: ignore[attr-defined]


def _days_newest_first(until: dt.date | None):
    query = JobDay.objects.filter(bucket="all")
    if until is not None:
        query = query.filter(day__lte=until)
    for row in query.limit(None).fetch_size(100):
        yield _as_date(row.day)


def jobs_list_newest_first(
    limit: int = 50,
    cursor: Cursor | None = None,
    *,
    status: str | None = None,
    day: dt.date | None = None,
) -> JobPage:
    """One page of jobs, newest first, reading only the day partitions it needs.

    Day partitions are read newest first, each in driver pages of about one listing
    page, and reading stops as soon as the page is full: a page costs a few small
    partition reads whatever the size of the table.
    """
    wanted: list[JobByDay] = []
    until = utc_day(cursor.created_at) if cursor else None
    days = [day] if day is not None else _days_newest_first(until)
    for each_day in days:
        rows = JobByDay.objects.filter(day=each_day)
        if cursor is not None and each_day == until:
            rows = rows.filter(created_at__lte=cursor.created_at)
        for row in rows.limit(None).fetch_size(limit + 8):
            if cursor is not None and row.created_at == cursor.created_at and row.job_id <= cursor.job_id:
                continue  # already shown on the previous page
            if status is not None and row.status != status:
                continue
            wanted.append(row)
            if len(wanted) > limit:
                break
        if len(wanted) > limit:
            break
    has_more = len(wanted) > limit
    wanted = wanted[:limit]
    found = Job.objects.filter(id__in=[r.job_id for r in wanted]) if wanted else []
    by_id = {job.id: job for job in found}
    jobs = [by_id[r.job_id] for r in wanted if r.job_id in by_id]
    last = wanted[-1] if wanted else None
    next_cursor = Cursor(last.created_at, last.job_id) if (has_more and last) else None
    return JobPage(jobs=jobs, next_cursor=next_cursor)


def download_expires_at(job: Job) -> dt.datetime | None:
    delivered = aware_utc(job.delivered_at)
    if delivered is None:
        return None
    return delivered + dt.timedelta(minutes=settings.IMAGEDL_RETENTION_MINUTES)
