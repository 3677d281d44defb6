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

from downloader.choices import SAFE_SEARCH_DEFAULT, Filters
from jobs.core import hooks, storage
from jobs.core.workdir import workdir_remove
from jobs.lib import scheduling
from jobs.lib.utc import aware_utc
from jobs.mail.outbox import email_enqueue, email_withdraw
from jobs.models import Job, JobActive, JobImage, JobMail, JobPurgeDue, JobStatus, filter_columns
from jobs.store import records
from jobs.store.events import event_record, personal_ttl_seconds
from jobs.store.webhooks import webhook_target_forget

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
    job_id: uuid.UUID | None = None,
    series_id: uuid.UUID | None = None,
    series_run: int | None = None,
) -> Job | None:
    """Store a validated request in Cassandra and schedule its run (forms validate first).

    ``job_id`` makes the job with that id, once: None comes back when it exists
    already (a series' next run created twice). ``series_id`` and ``series_run`` mark
    a run of a recurring series (``jobs.series``)."""
    if bool(query) == bool(page_url):
        raise ValueError("give exactly one of query and page_url")
    if run_at.tzinfo is None:
        raise ValueError("run_at must be timezone-aware")
    run_at = aware_utc(run_at)
    extra: dict[str, object] = {}
    if job_id is not None:
        extra["id"] = job_id
    if series_id is not None:
        extra.update(series_id=series_id, series_run=series_run)
    job = records.job_create(
        claim=job_id is not None,
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
        status=JobStatus.SCHEDULED,
        first_event=(
            "scheduled",
            f"Job scheduled for {run_at:%Y-%m-%d %H:%M} UTC ({time_zone})",
            {
                "count": requested_count,
                "engine": engine,
                "safe_search": safe_search,
                "filters": (filters or Filters()).as_text(),
            },
        ),
    )
    if job is None:
        return None  # made already, by another caller
    _schedule(job, accepted_mail=(series_run or 1) == 1)  # a series' later runs: its last mail said when
    return job


def _schedule(job: Job, *, accepted_mail: bool) -> None:
    """Queue the job's run and its "accepted" email in one SQLite transaction (one
    commit). Should that fail, the stored job says so instead of waiting forever, and
    its personal data goes at the usual retention (the user saw an error page)."""
    try:
        with transaction.atomic():
            _enqueue_run(job)
            if accepted_mail:
                email_enqueue(job, "accepted")
    except Exception:
        records.job_status_change(
            job,
            JobStatus.FAILED,
            only_from=JobStatus.ACTIVE,
            error="could not be scheduled",
            finished_at=_now(),
        )
        event_record(job.id, "failed", "Could not be scheduled", level="error")
        email_withdraw(job, "accepted")
        _due_for_purge(job)
        raise


def job_cancel(job: Job, *, by: str = "user") -> bool:
    """Cancel a scheduled or running job. Returns False if it had already finished.

    Before the run, the schedule is removed. During the run the job run sees the new
    status at its next step, stops, cleans up and records it.
    """
    was_running = job.status == JobStatus.RUNNING
    if not records.job_status_change(
        job, JobStatus.CANCELLED, only_from=JobStatus.ACTIVE, finished_at=_now()
    ):
        return False  # it finished (or was cancelled) first
    _remove_schedule(job)
    _no_longer_active(job)
    event_record(
        job.id,
        "cancelled",
        "Cancelled while running; stopping at the next step" if was_running else "Cancelled before the run",
        by=by,
    )
    _due_for_purge(job, still_active=not hooks.end_steps_run(job))
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
    JobActive.create(bucket="all", job_id=job.id)
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
    records.job_update(job, run_at=run_at)
    event_record(job.id, "rescheduled", f"Run time moved to {run_at:%Y-%m-%d %H:%M} UTC", by=by)
    _enqueue_run(job)
    return job


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
    due_rows = list(JobPurgeDue.objects.filter(bucket="all", due_at__lte=cutoff).limit(None))
    for row in due_rows:
        job = records.job_get(row.job_id)
        stale = job is not None and aware_utc(job.purge_due_at) not in (None, aware_utc(row.due_at))
        if job is None or job.purged_at is not None or job.status in JobStatus.ACTIVE or stale:
            # Gone, purged, running again after a retry, or replaced: nothing to delete.
            if not dry_run:
                row.delete()
            continue
        summary.jobs += 1
        summary.job_ids.append(job.id)
        if job.archive_path:
            summary.archives += 1
            summary.bytes += job.archive_bytes or 0
        if not dry_run:
            job_purge(job)
            row.delete()
    summary.series = hooks.purge_steps_run(cutoff, dry_run=dry_run).get("series", 0)
    return summary


def _due_for_purge(job: Job, *, still_active: bool = False) -> None:
    """A finished job: due for purge after the retention, and no longer active (unless
    ``still_active``: a step of its end is left to the reaper)."""
    finished = aware_utc(job.finished_at) or _now()
    due = finished + dt.timedelta(minutes=settings.IMAGEDL_RETENTION_MINUTES)
    _drop_purge_row(job)
    JobPurgeDue.create(bucket="all", due_at=due, job_id=job.id)
    records.job_update(job, purge_due_at=due)
    if not still_active:
        _no_longer_active(job)


def _drop_purge_row(job: Job) -> None:
    due = aware_utc(job.purge_due_at)
    if due is not None:
        JobPurgeDue.objects(bucket="all", due_at=due, job_id=job.id).delete()
        records.job_update(job, purge_due_at=None)


def _no_longer_active(job: Job) -> None:
    JobActive.objects(bucket="all", job_id=job.id).delete()


def _delete_outputs(job: Job) -> None:
    if job.archive_path:
        storage.delete(job.archive_path)
    storage.delete_folder(preview_folder(job.id))
    workdir_remove(job.id)
    JobImage.objects.filter(job_id=job.id).delete()


def preview_folder(job_id: uuid.UUID) -> str:
    """Where a job's image previews are stored (jobs.core.storage.outputs())."""
    return f"previews/{job_id.hex}"


def preview_path(job_id: uuid.UUID, sha256: str) -> str:
    return f"{preview_folder(job_id)}/{sha256[:32]}.jpg"


# --- what the job run does (jobs.core.run) ---------------------------------------------


def job_note(job: Job, kind: str, message: str, **data: object) -> None:
    """Add one step to the job's event log (and the application log)."""
    event_record(job.id, kind, message, **data)


def job_kept_images(job: Job, run_id: uuid.UUID) -> list[JobImage]:
    """The image rows a run of the job stored."""
    return records.job_images(job.id, run_id=run_id)


def _lease_until() -> dt.datetime:
    return _now() + dt.timedelta(seconds=settings.IMAGEDL_LEASE_SECONDS)


def job_start_attempt(job: Job, *, run_id: uuid.UUID | None = None) -> int:
    """Claim the job for a run and count the attempt; returns the attempt number, or 0
    when another run holds a live lease or the job is no longer scheduled or running.

    A lightweight transaction from the run id seen on ``job`` (none, or one whose lease
    ran out) to a new one, with a lease expiry; ``job.run_id`` is then this run's id,
    which every later write of the run is conditional on. ``run_id`` resumes a run that
    stepped back after a transient failure: its attempt is not counted again, and it
    still gets a new id, so a second delivery of the same retry task finds the job taken.
    """
    lease = aware_utc(job.lease_until)
    own = run_id is not None and job.run_id == run_id
    if job.status not in JobStatus.ACTIVE:
        return 0
    if job.run_id is not None and not own and lease is not None and lease > _now():
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
    if not records.job_write_if(job, changes, status_in=JobStatus.ACTIVE, run_is=job.run_id):
        return 0
    event_record(job.id, "started", f"Run started (attempt {attempt})", attempt=attempt, run=str(job.run_id))
    if attempt == 1 and not own and (job.series_run or 1) == 1:
        email_enqueue(job, "started")
    return attempt


def job_renew_lease(job: Job) -> bool:
    """Extend this run's lease; False when it lost the job (cancelled, or taken over)."""
    return records.job_write_if(
        job, {"lease_until": _lease_until()}, status_in=(JobStatus.RUNNING,), run_is=job.run_id
    )


def job_record_progress(job: Job, **counters: int | str) -> bool:
    """Write progress counters (found_count, downloaded_count, rejected_count,
    engine_used, already_delivered, filters_unapplied) while the run ``job.run_id`` owns the
    job; False when it does not."""
    allowed = {
        "found_count",
        "downloaded_count",
        "rejected_count",
        "engine_used",
        "already_delivered",
        "filters_unapplied",
    }
    unknown = set(counters) - allowed
    if unknown:
        raise ValueError(f"not progress fields: {sorted(unknown)}")
    return records.job_write_if(job, dict(counters), run_is=job.run_id)


def job_add_preview(job: Job, sha256: str, preview: bytes) -> None:
    """Store the small JPEG the worker made of a kept image (the web serves it as it is)."""
    storage.preview_save(preview_path(job.id, sha256), preview)


def job_add_image(job: Job, position: int, **fields: object) -> JobImage:
    """Store one image the run ``job.run_id`` kept."""
    run_id = job.run_id or uuid.UUID(int=0)
    return JobImage.ttl(personal_ttl_seconds()).create(
        job_id=job.id, run_id=run_id, position=position, **fields
    )


def job_complete(job: Job, *, archive_path: str, archive_bytes: int, kept: int) -> bool:
    """Deliver: the job points at its archive in one conditional write, made only while
    the run ``job.run_id`` owns the running job. False when it was cancelled or taken
    over meanwhile: this run's archive is deleted (nobody will be sent a link to it)."""
    now = _now()
    applied = records.job_status_change(
        job,
        JobStatus.DONE,
        only_from=(JobStatus.RUNNING,),
        run_is=job.run_id,
        archive_path=archive_path,
        archive_bytes=archive_bytes,
        downloaded_count=kept,
        finished_at=now,
        delivered_at=now,
        lease_until=None,
        error=None,
    )
    if not applied:
        storage.delete(archive_path)
        return False
    event_record(
        job.id, "done", f"{kept} images ready ({archive_bytes} bytes)", kept=kept, bytes=archive_bytes
    )
    # The mail first: until the job leaves job_active, the reaper finds a finished job
    # whose outcome mail was never queued (a worker that died in between) and queues it.
    email_enqueue(job, "ready")
    # A series' next run, before the job leaves job_active: when the step fails the job
    # stays listed there and the reaper repeats it (the step is idempotent).
    _due_for_purge(job, still_active=not hooks.end_steps_run(job))
    return True


def job_fail(job: Job, reason: str) -> bool:
    """The job cannot deliver: record the plain reason and tell the user. Made only
    while the run seen on ``job`` (or none) still owns it; when the job was cancelled,
    finished or taken over meanwhile nothing changes and False comes back."""
    if not records.job_status_change(
        job,
        JobStatus.FAILED,
        only_from=JobStatus.ACTIVE,
        run_is=job.run_id,
        error=reason,
        finished_at=_now(),
        lease_until=None,
    ):
        return False
    event_record(job.id, "failed", reason, level="error")
    email_enqueue(job, "failed")
    _due_for_purge(job, still_active=not hooks.end_steps_run(job))
    return True


def job_note_cancelled_during_run(job: Job) -> None:
    _delete_outputs(job)
    event_record(job.id, "cancel_done", "Run stopped and partial files removed")
