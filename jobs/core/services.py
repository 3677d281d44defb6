"""The verbs that change a job: submit, cancel, retry, purge, email, and the job run's steps.

Views, admin actions, management commands and tasks call these; none of them writes
job rows on its own. Every change is recorded in the job's event log.

Task arguments carry the job id (a plain string) only, never personal data. The job
run itself (``jobs.core.run``) calls the verbs at the bottom of this module.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from downloader.choices import PACK_DEFAULT, SAFE_SEARCH_DEFAULT, Filters
from jobs.core import hooks, storage
from jobs.core.workdir import workdir_remove, workdirs_sweep
from jobs.lib import metrics, scheduling
from jobs.lib.mailboxes import address_problem
from jobs.lib.utc import aware_utc
from jobs.lib.write_turn import database_write_turn
from jobs.mail.outbox import (
    email_enqueue,
    email_enqueue_once,
    email_outbox_writes,
    email_withdraw,
    queue_send,
)
from jobs.models import Job, JobActive, JobImage, JobMail, JobPurgeDue, JobStatus, filter_columns
from jobs.store import records
from jobs.store.events import Event, event_record, events_record, personal_ttl_seconds
from jobs.store.queues import LEGACY_BUCKET, queue_bucket, queue_buckets, queue_mark_advance
from jobs.store.webhooks import webhook_target_forget

PURGE_QUEUE = "job_purge_due"

logger = logging.getLogger("imagedl.jobs")


class JobStateError(Exception):
    """The job is not in a state that allows this change."""


def _now() -> dt.datetime:
    return timezone.now()


# --- scheduling (django-q2) --------------------------------------------------------


def _enqueue_run(job: Job) -> None:
    """Queue the job's run: now if its time has come, else once at its time, named
    ``job-<id>`` (the name is how cancel and reschedule find it)."""
    scheduling.queue_at(
        f"job-{job.id}", scheduling.RUN_TASK, (str(job.id),), aware_utc(job.run_at), group="jobs"
    )


def _remove_schedule(job: Job) -> None:
    scheduling.unschedule(f"job-{job.id}")


# --- what users do -----------------------------------------------------------------


def job_submit(
    *,
    email: str,
    requested_count: int,
    run_at: dt.datetime,
    time_zone: str,
    query: str = "",
    page_url: str = "",
    formats: set[str] | frozenset[str] = frozenset(),
    min_width: int = 0,
    min_height: int = 0,
    engine: str = "auto",
    output_format: str | None = None,
    safe_search: str = SAFE_SEARCH_DEFAULT,
    filters: Filters | None = None,
    pack: str = PACK_DEFAULT,
    job_id: uuid.UUID | None = None,
    series_id: uuid.UUID | None = None,
    series_run: int | None = None,
    held: bool = False,
    source: str = "form",
) -> Job | None:
    """Store a validated request in Cassandra and schedule its run (forms validate first).

    ``job_id`` makes the job with that id, once: None comes back when it exists
    already (a series' next run created twice). ``series_id`` and ``series_run`` mark
    a run of a recurring series (``jobs.series``). ``held``: its "accepted" mail goes
    out but its run waits for ``job_release`` (a series' confirmation). ``source``
    (form, api, series, cli) is counted in ``imagedl_jobs_submitted_total``."""
    if bool(query) == bool(page_url):
        raise ValueError("give exactly one of query and page_url")
    problem = address_problem(email)
    if problem:
        raise ValueError(f"the email address is refused: {problem}")
    if run_at.tzinfo is None:
        raise ValueError("run_at must be timezone-aware")
    run_at = aware_utc(run_at)
    created_at = _now()
    # A series' later runs: its last mail said when. A run that starts now: one mail,
    # its outcome (a held run's first mail carries the series' confirmation link).
    first = (series_run or 1) == 1
    accepted_mail = first and (held or not _within_a_minute(created_at, run_at))
    new_id = job_id or uuid.uuid4()
    extra: dict[str, object] = {"id": new_id}
    if series_id is not None:
        extra.update(series_id=series_id, series_run=series_run)
    if held:
        extra["held"] = True
    job = records.job_create(
        claim=job_id is not None,
        # The "accepted" mail's outbox rows go in the job's own batch.
        also=email_outbox_writes(new_id, 1, "accepted") if accepted_mail else (),
        created_at=created_at,
        **extra,
        email=email,
        query=query or None,
        page_url=page_url or None,
        requested_count=requested_count,
        run_at=run_at,
        time_zone=time_zone,
        formats=set(formats),
        min_width=min_width,
        min_height=min_height,
        engine=engine,
        output_format=output_format,
        safe_search=safe_search,
        **filter_columns(filters or Filters()),
        pack=pack,
        status=JobStatus.SCHEDULED,
        first_event=(
            "scheduled",
            f"Job scheduled for {run_at:%Y-%m-%d %H:%M} UTC ({time_zone})",
            {
                "count": requested_count,
                "engine": engine,
                "safe_search": safe_search,
                "filters": (filters or Filters()).as_text(),
                "pack": pack,
            },
        ),
    )
    if job is None:
        return None  # made already, by another caller
    metrics.job_submitted_count(source)
    _schedule(job, accepted_mail=accepted_mail)
    return job


STARTS_AT_ONCE = dt.timedelta(minutes=1)


def starts_at_once(job: Job, moment: dt.datetime | None) -> bool:
    """Whether ``moment`` (its run time, or its start) is within a minute of the job's
    submission: such a job is told only its outcome by mail."""
    return _within_a_minute(job.created_at, moment)


def _within_a_minute(created: dt.datetime | None, moment: dt.datetime | None) -> bool:
    created, moment = aware_utc(created), aware_utc(moment)
    return created is not None and moment is not None and moment - created <= STARTS_AT_ONCE


def _schedule(job: Job, *, accepted_mail: bool) -> None:
    """Queue the job's run (unless held) and the send of its "accepted" email (whose
    outbox rows came in the job's batch) in one SQLite transaction (one commit) that
    holds nothing else: SQLite has one write lock for every process, held here for
    two inserts, not for a Cassandra round trip, and taken in turn with the other
    web writers (``database_write_turn``). Should it fail, the stored job says so
    instead of waiting forever, the outbox row is withdrawn, and its personal data
    goes at the usual retention (the user saw an error page)."""
    try:
        with database_write_turn(), transaction.atomic():
            if not job.held:
                _enqueue_run(job)
            if accepted_mail:
                queue_send(job.id, "accepted", job.generation or 1)
    except Exception:
        now = _now()
        records.job_status_change(
            job,
            JobStatus.FAILED,
            only_from=JobStatus.ACTIVE,
            error="could not be scheduled",
            finished_at=now,
            purge_due_at=purge_due_time(now),
        )
        event_record(job.id, "failed", "Could not be scheduled", level="error")
        email_withdraw(job, "accepted")
        _run_ended(job)  # a series' run: the series moves on instead of waiting for it
        raise


def job_cancel(job: Job, *, by: str = "user") -> bool:
    """Cancel a scheduled or running job. Returns False if it had already finished.

    Before the run, the schedule is removed. During the run the job run sees the new
    status at its next step, stops, cleans up and records it.
    """
    was_running = job.status == JobStatus.RUNNING
    # Listed where the reaper reads now, not at its run time's bucket: should this
    # process die before the end below, the reaper finishes it (the purge row first).
    _active_bucket_move(job, queue_bucket())
    now = _now()
    if not records.job_status_change(
        job,
        JobStatus.CANCELLED,
        only_from=JobStatus.ACTIVE,
        finished_at=now,
        purge_due_at=purge_due_time(now),
    ):
        return False  # it finished (or was cancelled) first
    _remove_schedule(job)
    event_record(
        job.id,
        "cancelled",
        "Cancelled while running; stopping at the next step" if was_running else "Cancelled before the run",
        by=by,
    )
    _run_ended(job)
    return True


def job_retry(job: Job, *, by: str = "operator") -> Job:
    """Run a failed, cancelled or expired job again, now, from a clean slate."""
    if job.status in JobStatus.ACTIVE:
        raise JobStateError("the job is still scheduled or running")
    if job.purged_at is not None or not (job.email and (job.query or job.page_url)):
        raise JobStateError("the job's data was purged; submit it again instead")
    _delete_outputs(job)
    applied = records.job_status_change(
        job,
        JobStatus.SCHEDULED,
        only_from=JobStatus.FINISHED,
        run_at=_now(),
        generation=(job.generation or 1) + 1,  # its mails are sent again
        active_bucket=queue_bucket(),
        run_id=None,
        lease_until=None,
        attempts=0,
        found_count=0,
        downloaded_count=0,
        rejected_count=0,
        error=None,
        archive_path=None,
        archive_bytes=0,
        started_at=None,
        finished_at=None,
        delivered_at=None,
    )
    if not applied:
        raise JobStateError("the job is already scheduled or running again")
    _drop_purge_row(job)  # the old retention must not purge the new run
    JobActive.create(bucket=job.active_bucket, job_id=job.id)
    event_record(job.id, "retried", "Job queued to run again", by=by)
    _enqueue_run(job)
    return job


def job_reschedule(job: Job, run_at: dt.datetime, *, by: str = "operator") -> Job:
    """Move a scheduled job to another run time (aware datetime)."""
    if job.status != JobStatus.SCHEDULED:
        raise JobStateError("only a scheduled job can be moved")
    run_at = aware_utc(run_at)
    _remove_schedule(job)
    _drop_purge_row(job)
    _active_bucket_move(job, queue_bucket(run_at))
    records.job_update(job, run_at=run_at)
    event_record(job.id, "rescheduled", f"Run time moved to {run_at:%Y-%m-%d %H:%M} UTC", by=by)
    _enqueue_run(job)
    return job


def job_release(job: Job, *, by: str = "user") -> bool:
    """Let a held job run: at its time, or now if that has passed. False when it was
    not held (released already) or is no longer scheduled."""
    if not job.held or job.status != JobStatus.SCHEDULED:
        return False
    run_at = max(aware_utc(job.run_at), _now())
    records.job_update(job, held=False, run_at=run_at)
    event_record(job.id, "released", f"Confirmed: runs at {run_at:%Y-%m-%d %H:%M} UTC", by=by)
    _enqueue_run(job)
    return True


def _active_bucket_move(job: Job, bucket: str, *, run_is: object = records.ANY_RUN) -> None:
    """List the job under another bucket of ``job_active`` (the reaper reads buckets up
    to now). Given ``run_is`` (a run's id), only while that run owns the job; else the
    job stays listed in both, which the reaper's pass sorts out."""
    old = job.active_bucket or LEGACY_BUCKET
    if bucket == old:
        return
    JobActive.create(bucket=bucket, job_id=job.id)
    if run_is is records.ANY_RUN:
        records.job_update(job, active_bucket=bucket)
    elif not records.job_write_if(job, {"active_bucket": bucket}, run_is=run_is):
        return
    JobActive.objects(bucket=old, job_id=job.id).delete()


def job_purge(job: Job, *, by: str = "retention") -> None:
    """Delete the archive, images and personal data; keep an anonymous record. A job
    still scheduled or running is cancelled first (its run stops at its next step)."""
    if job.status in JobStatus.ACTIVE:
        job_cancel(job, by=by)
    _remove_schedule(job)
    _delete_outputs(job)
    JobMail.objects.filter(job_id=job.id).delete()
    webhook_target_forget(job.id)  # its webhook address is personal too
    changes: dict[str, object] = {
        "email": None,
        "query": None,
        "page_url": None,
        "purged_at": _now(),
        "archive_path": None,
    }
    records.job_update(job, **changes)
    records.job_status_change(job, JobStatus.EXPIRED, only_from=(JobStatus.DONE,))
    # Its job_purge_due row (if any) is dropped by the next jobs_purge_due pass.
    event_record(job.id, "purged", "Archive and personal data deleted", by=by)


@dataclass
class PurgeSummary:
    jobs: int = 0
    archives: int = 0
    bytes: int = 0
    job_ids: list[uuid.UUID] = field(default_factory=list)
    series: int = 0  # stopped recurring series purged (jobs.series)


def jobs_purge_due(
    *, now: dt.datetime | None = None, older_than: dt.timedelta | None = None, dry_run: bool = False
) -> PurgeSummary:
    """Purge every finished job whose retention has passed.

    ``older_than`` replaces the configured retention (jobs finished longer ago than
    that). Reads only the ``job_purge_due`` rows up to the cut-off.
    """
    now = now or _now()
    retention = dt.timedelta(minutes=settings.IMAGEDL_RETENTION_MINUTES)
    # due_at = finished + retention, so "finished before now - older_than" is
    # "due before now - older_than + retention".
    cutoff = now if older_than is None else now - older_than + retention
    summary = PurgeSummary()
    oldest_left = None
    until = max(cutoff, now)  # a row due before it was written sits in the bucket it was written in
    for bucket in queue_buckets(PURGE_QUEUE, until, now=now):
        for row in list(JobPurgeDue.objects.filter(bucket=bucket, due_at__lte=cutoff).limit(None)):
            if not _purge_row(row, summary, dry_run=dry_run):
                oldest_left = oldest_left or bucket
    if not dry_run:
        queue_mark_advance(PURGE_QUEUE, oldest_left, until=min(cutoff, now), now=now)
    summary.series = hooks.purge_steps_run(cutoff, dry_run=dry_run).get("series", 0)
    if not dry_run:
        workdirs_sweep()  # this machine's; every worker also sweeps its own (jobs.core.run)
    return summary


def _purge_row(row: JobPurgeDue, summary: PurgeSummary, *, dry_run: bool) -> bool:
    """Purge the job of one due row (counted in ``summary``); whether the row is gone."""
    job = records.job_get(row.job_id)
    stale = job is not None and aware_utc(job.purge_due_at) not in (None, aware_utc(row.due_at))
    if job is None or job.purged_at is not None or job.status in JobStatus.ACTIVE or stale:
        # Gone, purged, running again after a retry, or replaced: nothing to delete.
        if not dry_run:
            row.delete()
        return not dry_run
    summary.jobs += 1
    summary.job_ids.append(job.id)
    if job.archive_path:
        summary.archives += 1
        summary.bytes += job.archive_bytes or 0
    if dry_run:
        return False
    job_purge(job)
    row.delete()
    return True


def purge_due_time(finished: dt.datetime) -> dt.datetime:
    """When the data of a job that finished at ``finished`` is due for deletion."""
    return aware_utc(finished) + dt.timedelta(minutes=settings.IMAGEDL_RETENTION_MINUTES)


def job_purge_row_ensure(job: Job) -> None:
    """Write the finished job's ``job_purge_due`` row (idempotent: the same row again).

    The due time comes with the final status (one conditional write); a job finished
    by an older version, or without it, is due the retention after it finished."""
    due = aware_utc(job.purge_due_at)
    if due is None:
        due = purge_due_time(aware_utc(job.finished_at) or _now())
        records.job_update(job, purge_due_at=due)
    JobPurgeDue.create(bucket=queue_bucket(due), due_at=due, job_id=job.id)


def _run_ended(job: Job, mail: str | None = None) -> None:
    """What follows a final status, in the order that keeps the promises: the purge
    row first, then the outcome mail, then the end steps (a series' next run). The job
    leaves ``job_active`` only when all of them went through; until then the reaper
    repeats what is missing (each step is idempotent)."""
    job_purge_row_ensure(job)
    if mail is not None:
        email_enqueue(job, mail)
    if hooks.end_steps_run(job):
        _no_longer_active(job)
    else:  # listed where the reaper's next pass reads (a job cancelled before its time)
        _active_bucket_move(job, queue_bucket(), run_is=job.run_id)


OUTCOME_MAILS = {JobStatus.DONE: "ready", JobStatus.FAILED: "failed"}


def job_end_repair(job: Job) -> None:
    """What follows a run's outcome, again, by the run that stepped back after a write
    of it failed (a passing fault): the purge row, the outcome mail (queued again
    whether or not its row landed: the outbox sends it once) and the end steps, now
    instead of at the reaper's next pass or grace."""
    kind = OUTCOME_MAILS.get(job.status)
    if kind is not None and job.email and not email_enqueue_once(job, kind):
        queue_send(job.id, kind, job.generation or 1)
    _run_ended(job)


def _drop_purge_row(job: Job) -> None:
    """The job is active again: its purge row no longer applies (the purge pass drops
    it, finding the job active or due at another time)."""
    if job.purge_due_at is not None:
        records.job_update(job, purge_due_at=None)


def _no_longer_active(job: Job) -> None:
    JobActive.objects(bucket=job.active_bucket or LEGACY_BUCKET, job_id=job.id).delete()


def _delete_outputs(job: Job) -> None:
    """Every run's archive and the job's previews (by the job's prefix, in the folder
    or the bucket), the work folders on this machine and the image rows."""
    storage.delete_prefix(f"archives/{job.id.hex}")
    storage.delete_folder(preview_folder(job.id))
    workdir_remove(job.id)
    JobImage.objects.filter(job_id=job.id).delete()


def run_archive_path(job_id: uuid.UUID, run_id: uuid.UUID) -> str:
    """Where a run's zip is stored (a path in jobs.core.storage.outputs()): each run has
    its own, so a run that lost its job never touches the delivered one."""
    return f"archives/{job_id.hex}-{run_id.hex[:12]}.zip"


# The status page shows the first PREVIEWS_KEPT kept images; a preview of a later one
# would never be read, so runs store none (on S3, one request per image saved).
PREVIEWS_KEPT = 24


def preview_folder(job_id: uuid.UUID) -> str:
    """Where a job's image previews are stored (jobs.core.storage.outputs())."""
    return f"previews/{job_id.hex}"


def preview_path(job_id: uuid.UUID, sha256: str) -> str:
    return f"{preview_folder(job_id)}/{sha256[:32]}.jpg"


# --- what the job run does (jobs.core.run) ---------------------------------------------


def job_note(job: Job, kind: str, message: str, **data: object) -> None:
    """Add one step to the job's event log (and the application log)."""
    event_record(job.id, kind, message, **data)


def job_notes(job: Job, events: list[Event]) -> None:
    """Add several steps to the job's event log at once (one request), in their order."""
    events_record(job.id, events)


def job_kept_images(job: Job, run_id: uuid.UUID) -> list[JobImage]:
    """The image rows a run of the job stored."""
    return records.job_images(job.id, run_id=run_id)


def lease_held(lease_until: dt.datetime | None, now: dt.datetime | None = None) -> bool:
    """Whether a lease still holds its job. It counts as run out only
    IMAGEDL_CLOCK_SKEW_SECONDS after its time: the machine that wrote it may have a
    clock behind this one's."""
    lease = aware_utc(lease_until)
    skew = dt.timedelta(seconds=settings.IMAGEDL_CLOCK_SKEW_SECONDS)
    return lease is not None and lease + skew > (now or _now())


def _lease_until(extra_seconds: float = 0) -> dt.datetime:
    return _now() + dt.timedelta(seconds=settings.IMAGEDL_LEASE_SECONDS + extra_seconds)


def job_start_attempt(job: Job, *, run_id: uuid.UUID | None = None) -> int:
    """Claim the job for a run and count the attempt; returns the attempt number, or 0
    when another run holds a live lease or the job is no longer scheduled or running.

    A lightweight transaction from the run id seen on ``job`` (none, or one whose lease
    ran out) to a new one, with a lease expiry; ``job.run_id`` is then this run's id,
    which every later write of the run is conditional on. ``run_id`` resumes a run that
    stepped back after a transient failure: its attempt is not counted again, and it
    still gets a new id, so a second delivery of the same retry task finds the job taken.
    """
    own = run_id is not None and job.run_id == run_id
    if job.status not in JobStatus.ACTIVE:
        return 0
    if job.run_id is not None and not own and lease_held(job.lease_until):
        return 0  # someone is working on it
    attempt = (job.attempts or 0) + (0 if own else 1)
    changes: dict[str, object] = {
        "status": JobStatus.RUNNING,
        "run_id": uuid.uuid4(),
        "lease_until": _lease_until(),
        "attempts": attempt,
    }
    if job.started_at is None:
        changes["started_at"] = _now()
    listed_in = job.active_bucket or LEGACY_BUCKET
    if listed_in > queue_bucket():  # started before its time's bucket: listed where the reaper reads
        changes["active_bucket"] = queue_bucket()
    taken = records.job_write_if(
        job, changes, status_in=JobStatus.ACTIVE, run_is=job.run_id, lease_is=job.lease_until
    )
    if not taken:
        return 0
    if "active_bucket" in changes:
        JobActive.create(bucket=changes["active_bucket"], job_id=job.id)
        JobActive.objects(bucket=listed_in, job_id=job.id).delete()
    if "started_at" in changes:  # the job's first start: how long it waited past its time
        metrics.job_wait_observe((changes["started_at"] - aware_utc(job.run_at)).total_seconds())
    event_record(
        job.id, "started", f"Run started (attempt {attempt})", known=job, attempt=attempt, run=str(job.run_id)
    )
    # Submitted to start at once and started within the minute: its outcome is its one mail.
    first_start = changes.get("started_at") or job.started_at  # a resumed run keeps its first
    started_soon = not job.held and starts_at_once(job, job.run_at) and starts_at_once(job, first_start)
    if attempt == 1 and (job.series_run or 1) == 1 and not started_soon:
        # Once (a lightweight transaction): a run resuming its first attempt after a
        # passing fault queues it again, in case the fault came while it was queued.
        email_enqueue_once(job, "started")
    return attempt


def job_renew_lease(job: Job, *, extra_seconds: float = 0) -> bool:
    """Extend this run's lease (by ``extra_seconds`` more: a run stepping back holds
    its job through its delay); False when it lost the job (cancelled, or taken over)."""
    return records.job_write_if(
        job, {"lease_until": _lease_until(extra_seconds)}, status_in=(JobStatus.RUNNING,), run_is=job.run_id
    )


PROGRESS_FIELDS = frozenset(
    {
        "found_count",
        "downloaded_count",
        "rejected_count",
        "engine_used",
        "already_delivered",
        "filters_unapplied",
    }
)


def _progress_check(counters: dict[str, int | str]) -> None:
    unknown = set(counters) - PROGRESS_FIELDS
    if unknown:
        raise ValueError(f"not progress fields: {sorted(unknown)}")


def job_record_progress(job: Job, *, renew_lease: bool = False, **counters: int | str) -> bool:
    """Write progress counters (found_count, downloaded_count, rejected_count,
    engine_used, already_delivered, filters_unapplied) while the run ``job.run_id`` owns the
    running job; False when it does not, with ``job.status`` as found (``cancelled``: the
    run stops as after a cancel). Applied, it also tells the run it was not cancelled.
    ``renew_lease``: the same write renews the run's lease (``job_renew_lease``'s)."""
    _progress_check(counters)
    changes: dict[str, object] = dict(counters)
    if renew_lease:
        changes["lease_until"] = _lease_until()
    return records.job_write_if(job, changes, status_in=(JobStatus.RUNNING,), run_is=job.run_id)


def job_add_preview(job: Job, position: int, sha256: str, preview: bytes) -> None:
    """Store the small JPEG the worker made of the image kept at ``position`` (the web
    serves it as it is); only the first PREVIEWS_KEPT positions have one."""
    if preview and position <= PREVIEWS_KEPT:
        storage.preview_save(preview_path(job.id, sha256), preview)


def job_add_image(job: Job, position: int, **fields: object) -> JobImage:
    """Store one image the run ``job.run_id`` kept."""
    run_id = job.run_id or uuid.UUID(int=0)
    return JobImage.ttl(personal_ttl_seconds()).create(
        job_id=job.id, run_id=run_id, position=position, **fields
    )


def job_add_images(job: Job, rows: dict[int, dict[str, object]]) -> None:
    """Store images the run ``job.run_id`` kept (position -> columns) in one request.

    A plain write, not a conditional one: the rows are keyed by the run's id, and every
    reader asks for the rows of one run (the run the job names, or for adoption the run
    it named when the next run claimed it), so rows written by a run that lost its job
    are never read; the job's purge deletes them with the others."""
    records.job_images_write(job.id, job.run_id or uuid.UUID(int=0), rows)


def job_complete(
    job: Job,
    *,
    archive_path: str,
    archive_bytes: int,
    kept: int,
    progress: dict[str, int | str] | None = None,
) -> bool:
    """Deliver: the job points at its archive in one conditional write, made only while
    the run ``job.run_id`` owns the running job. False when it was cancelled or taken
    over meanwhile: this run's archive is deleted (nobody will be sent a link to it).
    ``progress``: the run's last progress counters, written in the same write."""
    now = _now()
    progress = dict(progress or {})
    _progress_check(progress)
    progress.pop("downloaded_count", None)  # the delivered count is ``kept``
    applied = records.job_status_change(
        job,
        JobStatus.DONE,
        only_from=(JobStatus.RUNNING,),
        run_is=job.run_id,
        **progress,
        archive_path=archive_path,
        archive_bytes=archive_bytes,
        downloaded_count=kept,
        finished_at=now,
        delivered_at=now,
        purge_due_at=purge_due_time(now),
        lease_until=None,
        error=None,
    )
    if not applied:
        storage.delete(archive_path)
        return False
    ready = f"{kept} images ready ({archive_bytes} bytes)"
    event_record(job.id, "done", ready, known=job, kept=kept, bytes=archive_bytes)
    _run_time_observe(job, now)
    _run_ended(job, "ready")
    return True


def job_fail(job: Job, reason: str) -> bool:
    """The job cannot deliver: record the plain reason and tell the user. Made only
    while the run seen on ``job`` (or none) still owns it; when the job was cancelled,
    finished or taken over meanwhile nothing changes and False comes back."""
    now = _now()
    if not records.job_status_change(
        job,
        JobStatus.FAILED,
        only_from=JobStatus.ACTIVE,
        run_is=job.run_id,
        error=reason,
        finished_at=now,
        purge_due_at=purge_due_time(now),
        lease_until=None,
    ):
        return False
    event_record(job.id, "failed", reason, level="error", known=job)
    _run_time_observe(job, now)
    _run_ended(job, "failed")
    return True


def _run_time_observe(job: Job, now: dt.datetime) -> None:
    started = aware_utc(job.started_at)
    if started is not None:
        metrics.job_run_observe((now - started).total_seconds())


def job_note_cancelled_during_run(job: Job) -> None:
    """The run ``job.run_id`` stopped after a cancel: it removes what it made and only
    that (its archive, its work folder, its image rows), since a retry may already
    have a new run at work. The job's previews, shared by its runs, go with the purge."""
    storage.delete(run_archive_path(job.id, job.run_id))
    workdir_remove(job.id, run_id=job.run_id)
    JobImage.objects.filter(job_id=job.id, run_id=job.run_id).delete()
    event_record(job.id, "cancel_done", "Run stopped and partial files removed")
