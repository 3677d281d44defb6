"""The job run: a job record in, a delivered archive (or a plain failure) out.

``run_job`` is what the worker's task calls. It loads the job, counts the attempt, and
hands a ``JobRun`` the work: turn the record into a ``downloader`` Request, resume from
the images an interrupted attempt had kept, follow the download through callbacks
(events, progress, each kept image), watch for cancellation, pack the archive and
record the outcome. Every change to the job goes through ``jobs.services``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from pathlib import Path

from django.conf import settings

from downloader.archive import write_archive
from downloader.choices import AUTO
from downloader.collect import CollectResult, Counts, KeptImage
from downloader.engines.base import EngineError
from downloader.gather import Request, gather
from jobs import services
from jobs.models import Job, JobStatus
from jobs.workdir import job_workdir, remove_workdir

logger = logging.getLogger("imagedl.jobs")

PROGRESS_EVERY = 0.5  # seconds between progress writes to the job row
CANCEL_CHECK_EVERY = 1.0  # seconds between reads of the job's status


class JobCancelled(Exception):
    """The job was cancelled while it ran."""


class NothingFound(Exception):
    """No valid image could be kept; the message is meant for the user."""


def request_for(job: Job) -> Request:
    """The download request a job record stands for."""
    return Request(
        wanted=job.requested_count,
        query=job.query or "",
        page_url=job.page_url or "",
        engine=job.engine or AUTO,
        formats=frozenset(job.formats or ()),
        min_width=job.min_width or 0,
        min_height=job.min_height or 0,
        output_format=job.output_format,
    )


def archive_path(job: Job) -> str:
    """Where the job's zip is stored (a path in Django's default storage)."""
    return f"archives/{job.id.hex}.zip"


def run_job(job_id: uuid.UUID | str) -> str:
    """Run one job to its end. Safe to call again after a crash (the task re-delivery)."""
    job = services.job_get(job_id)
    if job is None:
        return "missing"
    if job.status not in JobStatus.ACTIVE:
        return f"skipped: {job.status}"
    if (job.attempts or 0) >= settings.IMAGEDL_JOB_MAX_ATTEMPTS:
        services.job_fail(
            job,
            f"The job was interrupted {job.attempts} times before it could finish, so we stopped trying.",
        )
        return "failed: attempts"
    if not services.job_start_attempt(job):
        return f"skipped: {job.status}"  # cancelled between the check above and now
    return JobRun(job).execute()


class CancelWatch:
    """Answers "was the job cancelled?", reading Cassandra at most once a second."""

    def __init__(self, job_id: uuid.UUID) -> None:
        self.job_id = job_id
        self._checked = 0.0
        self._cancelled = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._cancelled and now - self._checked >= CANCEL_CHECK_EVERY:
            self._checked = now
            current = services.job_get(self.job_id)
            self._cancelled = current is None or current.status == JobStatus.CANCELLED
        return self._cancelled


class JobRun:
    """One attempt at a job. Its callbacks run in the collector's thread."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.request = request_for(job)
        self.workdir = job_workdir(job.id)
        self.kept_dir = self.workdir / "kept"
        self.kept_dir.mkdir(exist_ok=True)
        self.cancelled = CancelWatch(job.id)
        self.last_progress = 0.0
        self.resumed = self._resumable_images()
        self.position = len(self.resumed)  # numbers the kept files and image rows

    def execute(self) -> str:
        job = self.job
        if self.resumed:
            services.job_note(
                job, "resumed", f"Resuming with {len(self.resumed)} images kept by the previous attempt"
            )
        try:
            result = gather(
                self.request,
                self.workdir,
                on_event=self.on_event,
                on_progress=self.on_progress,
                on_kept=self.on_kept,
                should_stop=self.cancelled,
                already_kept=self.resumed,
            )
            return self._deliver(result)
        except JobCancelled:
            services.job_note_cancelled_during_run(job)
            return "cancelled"
        except NothingFound as exc:
            services.job_fail(job, str(exc))
            remove_workdir(job.id)
            return "failed: nothing found"
        except Exception as exc:
            logger.exception("job=%s failed", job.id)
            services.job_fail(job, plain_failure(exc))
            return "failed: error"

    # -- callbacks from the download ------------------------------------------------

    def on_event(self, kind: str, message: str, data: dict) -> None:
        if kind == "engine_started" and data.get("engine"):
            services.job_record_progress(self.job, engine_used=str(data["engine"]))
        services.job_note(self.job, kind, message, **data)

    def on_progress(self, counts: Counts) -> None:
        now = time.monotonic()
        if now - self.last_progress < PROGRESS_EVERY:
            return
        self.last_progress = now
        services.job_record_progress(
            self.job,
            found_count=counts.found,
            downloaded_count=counts.kept,
            rejected_count=counts.rejected_total,
        )

    def on_kept(self, image: KeptImage) -> None:
        """Move the file where a resumed attempt will find it, and remember it."""
        self.position += 1
        name = f"{self.position:06d}-{image.sha256[:16]}.{image.format}"
        target = self.kept_dir / name
        Path(image.path).replace(target)
        image.path = target
        services.job_add_image(self.job, self.position, file_name=name, **image.description())

    # -- the outcome ----------------------------------------------------------------

    def _resumable_images(self) -> list[KeptImage]:
        """Images a previous attempt kept, whose files are still in the work folder."""
        rows = services.job_kept_images(self.job)
        return [
            KeptImage.from_description(self.kept_dir / row.file_name, row)
            for row in rows
            if (self.kept_dir / row.file_name).exists()
        ]

    def _deliver(self, result: CollectResult) -> str:
        job, request = self.job, self.request
        if self.cancelled() or result.stopped:
            raise JobCancelled
        self._record_outcome(result)
        if not result.kept:
            raise NothingFound(nothing_found_reason(request, result))
        archive = write_archive(
            result.kept[: request.wanted], name_stem=request.name_stem, path=archive_path(job)
        )
        services.job_note(job, "archive_written", f"Packed {archive.count} images ({archive.bytes} bytes)")
        if self.cancelled():
            raise JobCancelled
        services.job_record_progress(
            job, found_count=result.found, rejected_count=sum(result.rejected.values())
        )
        if not services.job_complete(
            job, archive_path=archive.path, archive_bytes=archive.bytes, kept=archive.count
        ):
            raise JobCancelled  # cancelled while the archive was written
        remove_workdir(job.id)
        return f"done: {archive.count}"

    def _record_outcome(self, result: CollectResult) -> None:
        job = self.job
        services.job_note(
            job, "candidates_found", f"{result.found} candidate images found", found=result.found
        )
        for reason, count in sorted(result.rejected.items()):
            services.job_note(
                job, "rejected", f"{count} rejected: {reason.replace('_', ' ')}", reason=reason, count=count
            )
        services.job_note(job, "kept", f"{len(result.kept)} valid, unique images kept", kept=len(result.kept))


def nothing_found_reason(request: Request, result: CollectResult) -> str:
    """Why nothing could be delivered, in words the user reads."""
    if result.found == 0:
        where = "on that page" if request.page_url else "for that search"
        return (
            f"We could not find any images {where}. "
            "The search engines may be blocking us, or there are no results."
        )
    top = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in Counter(result.rejected).most_common(3))
    return f"We found {result.found} images, but none passed our checks ({top})."


def plain_failure(exc: Exception) -> str:
    """An unexpected error, in words the user reads (the details go to the log)."""
    if isinstance(exc, EngineError):
        return f"The image search failed: {exc}"
    return "An unexpected error stopped the job. Our operators have the details; you can try again."
