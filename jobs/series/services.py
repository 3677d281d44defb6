"""Recurring series: run again every day or week, delivering only what is new.

A series (``Series``) is the request and its rhythm; each run is an ordinary job
(``Job.series_id``, ``Job.series_run``) with a deterministic id
(``run_job_id(series, n)``). When a run ends (delivered, failed or cancelled),
``series_run_ended`` records what it delivered in the series' history
(``SeriesImage``), counts the run, and either stops the series (after
IMAGEDL_SERIES_MAX_RUNS runs, or IMAGEDL_SERIES_MAX_EMPTY_RUNS runs in a row with
nothing new, with a mail saying so) or creates the next run's job at the next local
occurrence of the series' time (``jobs.series.recurrence``).

A series is created *pending* (double opt-in): its first run's job is held, and its
first mail carries a confirmation link; ``series_confirm`` makes it active and
releases that run. Unconfirmed after IMAGEDL_SERIES_CONFIRM_HOURS, the purge stops it
("unconfirmed") and forgets its personal data and its held run's.

The step runs at least once, possibly more (a task handed out twice, the reaper
repeating it for a job whose worker died): moving ``runs_scheduled`` from n to n + 1
is a lightweight transaction only one caller wins, and the next job is created with
``IF NOT EXISTS`` on its deterministic id, so however often the step runs there is one
next job, one schedule and one mail.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import uuid

from django.conf import settings
from django.utils import timezone

from downloader.choices import PACK_DEFAULT
from downloader.dedupe import SIGNATURE_METHOD
from jobs.core import services
from jobs.lib.utc import aware_utc, naive_utc
from jobs.mail.outbox import email_enqueue_once
from jobs.mail.suppression import is_suppressed
from jobs.models import (
    Job,
    JobStatus,
    Series,
    SeriesEvery,
    SeriesImage,
    SeriesList,
    SeriesPurgeDue,
    SeriesRun,
    SeriesStatus,
)
from jobs.series.limits import slots_release, slots_take
from jobs.series.recurrence import next_run_after
from jobs.store import records
from jobs.store.cassandra import update_if
from jobs.store.events import event_record, job_events, personal_ttl_seconds
from jobs.store.series import run_job_id, series_get
from jobs.store.webhooks import webhook_target_forget

logger = logging.getLogger("imagedl.jobs")

PERSONAL = ("email", "query", "page_url")
MAILED_STOPS = (
    "max_runs",
    "nothing_new",
    "mail_capped",
    "last_day",
)  # (the outbox holds it back if still capped)
LIVE = (SeriesStatus.PENDING, SeriesStatus.ACTIVE)
REPAIR_AFTER = dt.timedelta(seconds=60)  # a next job left half-made this long is made again


def _now() -> dt.datetime:
    return timezone.now()


def series_ttl_seconds(every: str) -> int:
    """The TTL of a series' personal cells, renewed at each run: a period between runs
    plus the personal-data TTL."""
    return SeriesEvery.DAYS.get(every, 7) * 86400 + personal_ttl_seconds()


def history_ttl_seconds(every: str) -> int:
    """Delivered-image rows (hashes, no text) live at most the longest life of a series;
    the purge deletes them with it."""
    longest = (settings.IMAGEDL_SERIES_MAX_RUNS + 1) * SeriesEvery.DAYS.get(every, 7) * 86400
    return longest + personal_ttl_seconds()


# --- submit ------------------------------------------------------------------------


def series_submit(
    *,
    every: str,
    run_at: dt.datetime,
    time_zone: str,
    client: str | None = None,
    confirmed_by: str | None = None,
    last_day: dt.date | None = None,
    **request: object,
) -> Job:
    """A recurring request: the series, pending until confirmed, and its first run (at
    ``run_at``, aware; held until then), whose local time (and weekday, for a weekly
    series) every later run keeps. ``request`` is what ``services.job_submit`` takes
    (email, query or page_url, count, filters); ``client`` the submitter's address key
    (``client_key``), counted against IMAGEDL_MAX_SERIES_PER_IP (``jobs.series.limits``,
    which the form checks first); ``last_day``, the local date after which no run starts.
    ``confirmed_by`` names who already stands for the mailbox's owner (an API key
    issued to it): the series starts active, no link to confirm is mailed and its first
    run is not held."""
    if every not in SeriesEvery.DAYS:
        raise ValueError(f"unknown repeat {every!r}")
    if run_at.tzinfo is None:
        raise ValueError("run_at must be timezone-aware")
    import zoneinfo

    local = run_at.astimezone(zoneinfo.ZoneInfo(time_zone))
    now = _now()
    personal = {name: request.pop(name, None) or None for name in PERSONAL}
    series_id = uuid.uuid4()
    series = Series.create(
        id=series_id,
        created_at=naive_utc(now),
        engine=request.get("engine", "auto"),
        requested_count=request["requested_count"],
        formats=set(request.get("formats") or ()),
        min_width=request.get("min_width", 0),
        min_height=request.get("min_height", 0),
        output_format=request.get("output_format"),
        safe_search=request.get("safe_search") or "moderate",
        filter_values=request["filters"].chosen() if request.get("filters") else {},
        pack=request.get("pack") or PACK_DEFAULT,
        every=every,
        time_zone=time_zone,
        local_time=f"{local:%H:%M}",
        weekday=local.weekday() if every == SeriesEvery.WEEK else None,
        last_day=last_day,
        status=SeriesStatus.ACTIVE if confirmed_by else SeriesStatus.PENDING,
        confirmed_at=naive_utc(now) if confirmed_by else None,
        confirm_by=None if confirmed_by else naive_utc(now + _confirm_window()),
        runs_scheduled=1,
        next_job_id=run_job_id(series_id, 1),
        next_run_at=naive_utc(aware_utc(run_at)),
    )
    _renew(series, **personal)
    slots_take(series, str(personal["email"]), client)
    SeriesList.create(bucket="all", created_at=series.created_at, series_id=series.id)
    if not confirmed_by:
        _purge_at(series, aware_utc(series.confirm_by))  # unless confirmed by then
    try:
        job = _create_run_job(series, 1, run_at, held=not confirmed_by)
    except Exception:
        series_stop(series, reason="not_scheduled", by="system")
        raise
    assert job is not None  # a new series' first run cannot exist yet
    if confirmed_by:
        logger.info("series=%s confirmed by=%s", series.id, confirmed_by)
    return job


def _confirm_window() -> dt.timedelta:
    return dt.timedelta(hours=settings.IMAGEDL_SERIES_CONFIRM_HOURS)


def _renew(series: Series, **personal: object) -> None:
    """Write (or write again) the series' personal cells with a fresh TTL."""
    values = {name: personal.get(name, getattr(series, name)) for name in PERSONAL}
    Series.objects(id=series.id).ttl(series_ttl_seconds(series.every)).update(**values)
    for name, value in values.items():
        setattr(series, name, value)


def _create_run_job(series: Series, run: int, run_at: dt.datetime, *, held: bool = False) -> Job | None:
    """The job of the series' run ``run`` (None when it exists already); ``held``: it
    waits for the series' confirmation."""
    if not series.email or not series.subject:
        return None  # its personal data expired: nothing to run for
    job_id = run_job_id(series.id, run)
    SeriesRun.create(series_id=series.id, run=run, job_id=job_id, run_at=naive_utc(aware_utc(run_at)))
    return services.job_submit(
        source="series",
        job_id=job_id,
        series_id=series.id,
        series_run=run,
        email=series.email,
        query=series.query or "",
        page_url=series.page_url or "",
        requested_count=series.requested_count,
        run_at=aware_utc(run_at),
        time_zone=series.time_zone,
        formats=set(series.formats or ()),
        min_width=series.min_width or 0,
        min_height=series.min_height or 0,
        engine=series.engine or "auto",
        output_format=series.output_format,
        safe_search=series.safe_search or "moderate",
        filters=series.filters,
        pack=series.pack or PACK_DEFAULT,
        held=held,
    )


# --- conditional writes ------------------------------------------------------------


def _write_if(
    series: Series,
    changes: dict[str, object],
    *,
    runs_scheduled: int | None = None,
    status: str = SeriesStatus.ACTIVE,
) -> bool:
    """Write non-personal columns while the series is in ``status`` (and, given, while
    its newest run is ``runs_scheduled``): a lightweight transaction."""
    conditions: list[tuple[str, tuple[object, ...]]] = [("status = ?", (status,))]
    if runs_scheduled is not None:
        conditions.append(("runs_scheduled = ?", (runs_scheduled,)))
    values = {name: naive_utc(value) for name, value in changes.items()}
    result = update_if(Series.column_family_name(), series.id, values, conditions)
    if not result.was_applied:
        return False
    for name, value in values.items():
        setattr(series, name, value)
    return True


# --- the end of a run --------------------------------------------------------------


def series_run_ended(job: Job) -> None:
    """The end step of a series' run (idempotent): remember what it delivered, count
    it, then stop the series or make sure its next run's job exists."""
    series = series_get(job.series_id)
    if series is None or series.purged_at is not None:
        return
    if series.status == SeriesStatus.PENDING:  # its held first run was cancelled: no series
        series_stop(series, reason="user", by="user")
        return
    run = job.series_run or 0
    if series.is_active and series.runs_scheduled == run:
        if job.status == JobStatus.DONE:
            _remember_delivered(series, job)
        if not _advance(series, job):
            series = series_get(series.id) or series  # another caller moved it on
    if not series.is_active:
        _finish_stop(series, job)
        return
    _ensure_next_job(series)


def _remember_delivered(series: Series, job: Job) -> None:
    """The delivered images' hashes, from the image rows of the run the job names."""
    ttl = history_ttl_seconds(series.every)
    for image in records.job_images(job.id, limit=10_000):
        if image.sha256:
            SeriesImage.ttl(ttl).create(
                series_id=series.id,
                method=SIGNATURE_METHOD,
                sha256=image.sha256,
                phash=image.phash or "",
                run=job.series_run,
            )


def _advance(series: Series, job: Job) -> bool:
    """Count the run and move the series on (to its next run, or stopped) in one
    lightweight transaction; False when another caller did it first."""
    now = _now()
    counted = job.status in (JobStatus.DONE, JobStatus.FAILED)  # a cancelled run is skipped
    delivered = (job.downloaded_count or 0) if job.status == JobStatus.DONE else 0
    runs_done = (series.runs_done or 0) + (1 if counted else 0)
    empty = 0 if delivered else (series.empty_runs or 0) + (1 if counted else 0)
    changes: dict[str, object] = {
        "runs_done": runs_done,
        "empty_runs": empty,
        "delivered_total": (series.delivered_total or 0) + delivered,
    }
    if delivered:
        changes["last_delivery_at"] = now
    reason = _stop_reason(series, job, runs_done=runs_done, empty=empty)
    if reason is not None:
        changes.update(status=SeriesStatus.STOPPED, stop_reason=reason, stopped_at=now, next_run_at=None)
    else:
        after = max(now, aware_utc(series.next_run_at) or now)
        next_at = next_run_after(
            after,
            every=series.every,
            time_zone=series.time_zone,
            local_time=series.local_time,
            weekday=series.weekday,
        )
        run = (job.series_run or 0) + 1
        changes.update(runs_scheduled=run, next_job_id=run_job_id(series.id, run), next_run_at=next_at)
        if _after_last_day(series, next_at):
            reason = "last_day"
            changes = {**changes, "status": SeriesStatus.STOPPED, "stop_reason": reason, "stopped_at": now}
            changes.update(runs_scheduled=job.series_run, next_job_id=None, next_run_at=None)
    if not _write_if(series, changes, runs_scheduled=job.series_run):
        return False
    if reason is None:
        _renew(series)  # its personal data lives while it is active
        event_record(
            job.id, "series_next", f"Next run of the series: {changes['next_run_at']:%Y-%m-%d %H:%M} UTC"
        )
    else:
        event_record(job.id, "series_stopped", f"The series stopped: {reason}", reason=reason)
    return True


def _after_last_day(series: Series, moment: dt.datetime) -> bool:
    """Whether a run at ``moment`` would start after the series' last day (its zone's)."""
    import zoneinfo

    if series.last_day is None:
        return False
    last = series.last_day if isinstance(series.last_day, dt.date) else series.last_day.date()
    return aware_utc(moment).astimezone(zoneinfo.ZoneInfo(series.time_zone)).date() > last


def _stop_reason(series: Series, job: Job, *, runs_done: int, empty: int) -> str | None:
    """Why the series stops after this run, or None: its most runs, nothing new too
    often, or its mail no longer reaches its address."""
    if runs_done >= settings.IMAGEDL_SERIES_MAX_RUNS:
        return "max_runs"
    if empty >= settings.IMAGEDL_SERIES_MAX_EMPTY_RUNS:
        return "nothing_new"
    if series.email and is_suppressed(series.email):
        return "unsubscribed"
    return _mail_trouble(series, job)


def _mail_trouble(series: Series, job: Job) -> str | None:
    """The mail server refused the address for good (a mail of this run or the one
    before), or the daily cap held back a mail of two runs in a row (this one and the
    one before, or, since a run's last mail goes out after its end, the two before)."""
    run = job.series_run or 1
    kinds = [_event_kinds(run_job_id(series.id, n)) for n in (run, run - 1, run - 2) if n >= 1]
    if any("email_refused" in seen for seen in kinds[:2]):
        return "address_refused"
    capped = ["email_daily_cap" in seen for seen in kinds]
    if any(newer and older for newer, older in itertools.pairwise(capped)):
        return "mail_capped"
    return None


def _event_kinds(job_id: uuid.UUID) -> set[str]:
    return {event.kind for event in job_events(job_id)}


def _ensure_next_job(series: Series) -> None:
    """Make the newest run's job unless it exists (a caller that died after moving the
    series on left it unmade; a row half-made that long ago is written again)."""
    if series.next_job_id is None or series.next_run_at is None:
        return
    existing = records.job_get(series.next_job_id)
    if existing is not None:
        half_made = existing.status is None and aware_utc(existing.created_at) < _now() - REPAIR_AFTER
        if not half_made:
            return
        existing.delete()
    _create_run_job(series, series.runs_scheduled, aware_utc(series.next_run_at))


def _purge_at(series: Series, due: dt.datetime) -> None:
    SeriesPurgeDue.create(bucket="all", due_at=due, series_id=series.id)
    Series.objects(id=series.id).update(purge_due_at=naive_utc(due))
    series.purge_due_at = naive_utc(due)


def _finish_stop(series: Series, job: Job | None) -> None:
    """After a stop: due for purge after the retention, and the user told (once) when
    the series stopped by itself."""
    slots_release(series)
    if series.purge_due_at is None and series.stopped_at is not None:
        retention = dt.timedelta(minutes=settings.IMAGEDL_RETENTION_MINUTES)
        _purge_at(series, aware_utc(series.stopped_at) + retention)
    if job is not None and series.stop_reason in MAILED_STOPS and job.email:
        email_enqueue_once(job, "series_stopped")


# --- what users and operators do ---------------------------------------------------


def series_confirm(series: Series, *, by: str = "user") -> bool:
    """The owner of the mailbox confirmed: the series becomes active and its first run
    is released (at its time, or now if that passed). False when it was not pending."""
    changes = {"status": SeriesStatus.ACTIVE, "confirmed_at": _now(), "purge_due_at": None}
    if not _write_if(series, changes, status=SeriesStatus.PENDING):
        return False
    first = records.job_get(series.next_job_id) if series.next_job_id else None
    if first is not None:
        services.job_release(first, by=by)
    logger.info("series=%s confirmed", series.id)
    return True


def series_stop(series: Series, *, reason: str = "user", by: str = "user") -> bool:
    """Stop a series (pending or active): no more runs; its pending run is cancelled.
    False when it had stopped already."""
    now = _now()
    changes = {"status": SeriesStatus.STOPPED, "stop_reason": reason, "stopped_at": now}
    if not any(_write_if(series, changes, status=status) for status in LIVE):
        return False
    series.status = SeriesStatus.STOPPED
    pending = records.job_get(series.next_job_id) if series.next_job_id else None
    if pending is not None and pending.status in JobStatus.ACTIVE:
        services.job_cancel(pending, by=by)
    if pending is not None:  # the series' last run carries its end (webhooks: series.stopped)
        event_record(pending.id, "series_stopped", f"The series stopped: {reason}", reason=reason)
    _finish_stop(series, None)
    logger.info("series=%s stopped reason=%s", series.id, reason)
    return True


def series_run_now(series: Series, *, by: str = "operator") -> str:
    """Move the series' pending run to now. Returns what happened, in words."""
    if series.status == SeriesStatus.PENDING:
        return "not run: the series waits for its owner's confirmation"
    if not series.is_active:
        return "not run: the series has stopped"
    _ensure_next_job(series)
    pending = records.job_get(series.next_job_id) if series.next_job_id else None
    if pending is None:
        return "not run: no pending run"
    if pending.status != JobStatus.SCHEDULED:
        return f"not run: its run is {pending.status}"
    now = _now()
    # The run happens now instead of at its time: the run after it comes at the next
    # local occurrence after now, not after the time it replaced.
    if not _write_if(series, {"next_run_at": now}, runs_scheduled=series.runs_scheduled):
        return "not run: the series changed meanwhile"
    services.job_reschedule(pending, now, by=by)
    return "queued to run now"


# --- purge -------------------------------------------------------------------------


def series_purge(series: Series, *, by: str = "retention") -> None:
    """Delete a stopped series' history, runs and personal data; keep an anonymous
    record. An active series is stopped first; a pending one (never confirmed) too, and
    its held run is purged with it."""
    if series.status == SeriesStatus.PENDING:
        series_stop(series, reason="unconfirmed", by=by)
        _purge_held_run(series, by=by)
    if series.is_active:
        series_stop(series, reason="operator", by=by)
    SeriesImage.objects.filter(series_id=series.id).delete()
    SeriesRun.objects.filter(series_id=series.id).delete()
    SeriesList.objects(bucket="all", created_at=series.created_at, series_id=series.id).delete()
    webhook_target_forget(series.id)  # its webhook address is personal too
    Series.objects(id=series.id).update(email=None, query=None, page_url=None, purged_at=_now())
    logger.info("series=%s purged by=%s", series.id, by.split(":")[0])


def _purge_held_run(series: Series, *, by: str) -> None:
    first = records.job_get(series.next_job_id) if series.next_job_id else None
    if first is not None and first.held:
        services.job_purge(first, by=by)


def series_purge_due(cutoff: dt.datetime, *, dry_run: bool = False) -> int:
    """Purge every stopped series due by ``cutoff``; returns how many."""
    count = 0
    for row in list(SeriesPurgeDue.objects.filter(bucket="all", due_at__lte=cutoff).limit(None)):
        series = series_get(row.series_id)
        # A row left from before a confirmation (or a stop) names a time no longer its own.
        stale = series is not None and aware_utc(series.purge_due_at) != aware_utc(row.due_at)
        if series is None or series.purged_at is not None or series.is_active or stale:
            if not dry_run:
                row.delete()
            continue
        count += 1
        if not dry_run:
            series_purge(series)
            row.delete()
    return count
