"""The job run: a job record in, a delivered archive (or a plain failure) out.

``job_run`` is what the worker's task calls, safe to call any number of times at once
(django-q2 delivers at least once). It claims the job with a lease
(``services.job_start_attempt``): a copy that finds a live lease leaves without
touching anything. ``JobRun`` then does the work: turn the record into a
``downloader`` Request, adopt the images a run whose lease ran out had kept, follow
the download through callbacks (events, progress, each kept image: the last two
written together at most once a second, ``jobs.core.runwrites``), renew the lease,
watch for cancellation, pack the run's own archive and record the outcome. Every write
it makes to the job row is conditional on its run id: a run that lost its lease stops
and writes nothing more. When Cassandra or the browser does not answer, the run steps
back and is queued again with backoff (``step_back``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from downloader.archive import write_archive
from downloader.choices import ALL, AUTO, PACK_DEFAULT, PACKS, SAFE_SEARCH_DEFAULT
from downloader.collect import ALREADY_DELIVERED, CollectResult, Counts, KeptImage
from downloader.config import gather_options_from_settings
from downloader.dedupe import DuplicateFilter
from downloader.engines.base import EngineError
from downloader.gather import Request, delivered_filter, gather
from downloader.layouts import PackOptions
from jobs.core import services, storage
from jobs.core.runwrites import RunWrites
from jobs.core.workdir import run_workdir, workdir_remove, workdirs_sweep_now_and_then
from jobs.lib import metrics, scheduling
from jobs.lib.logcontext import log_context_bind
from jobs.lib.transient import is_transient, transient_cause
from jobs.models import Job, JobStatus
from jobs.store import records
from jobs.store.events import job_error_log
from jobs.store.series import series_get, series_history

logger = logging.getLogger("imagedl.jobs")

CANCEL_CHECK_EVERY = 1.0  # seconds between reads of the job's status
MAX_STEP_BACK_DELAY = 300  # seconds


class JobCancelled(Exception):
    """The job was cancelled (or taken by another run) while it ran."""


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
        safe_search=job.safe_search or SAFE_SEARCH_DEFAULT,
        filters=job.filters,
    )


def manifest_shared(request: Request) -> dict[str, str]:
    """The manifest fields every image of ``request`` shares: the search's safe search
    and engine filters (none for a page)."""
    if request.page_url:
        return {"safe_search": "", "filters": ""}
    return {"safe_search": request.safe_search, "filters": request.filters.as_text()}


def archive_path(job: Job, run_id: uuid.UUID) -> str:
    """Where a run's zip is stored (``services.run_archive_path``)."""
    return services.run_archive_path(job.id, run_id)


def job_run(job_id: uuid.UUID | str, retry: int = 0, run_id: str = "", stepped_back: str = "") -> str:
    """Run one job to its end, or leave it to the run that holds it.

    ``retry``, ``run_id`` and ``stepped_back`` come from ``step_back``: how many times
    this run stepped back, its id (to resume its own lease), and why.
    """
    _sweep_work_folders()
    try:
        return _claim_and_run(job_id, retry, run_id, stepped_back)
    except Exception as exc:
        if not is_transient(exc):
            raise
        return step_back(str(job_id), retry, run_id, exc)


def _sweep_work_folders() -> None:
    """This machine's forgotten work folders go (at most once a purge period): the
    purge task runs on one worker, a killed run's folder stays on the one it ran on."""
    try:
        workdirs_sweep_now_and_then(settings.IMAGEDL_PURGE_EVERY_MINUTES * 60)
    except Exception as exc:  # never a reason for the run to fail
        logger.warning("sweeping work folders failed (%s)", type(exc).__name__)


def _claim_and_run(job_id: uuid.UUID | str, retry: int, run_id: str, stepped_back: str) -> str:
    job = records.job_get(job_id)
    if job is None:
        return "missing"
    if job.status not in JobStatus.ACTIVE:  # (a late copy of a retry says nothing on a finished job)
        if run_id and job.run_id == uuid.UUID(run_id):  # this run's outcome landed, a write after it did not
            services.job_end_repair(job)
        return f"skipped: {job.status}"
    if job.held:  # waiting for its confirmation: whatever queued this task, nothing runs
        return "skipped: held"
    if stepped_back:  # recorded now that Cassandra answers again
        services.job_note(
            job,
            "stepped_back",
            f"A service did not answer ({stepped_back}); the run was queued again",
            level="warning",
            error=stepped_back,
        )
    own = uuid.UUID(run_id) if run_id else None
    if job.run_id not in (None, own) and services.lease_held(job.lease_until):
        return "skipped: another run holds the job"
    if job.series_id is not None and not _series_active(job):
        services.job_note(job, "series_stopped", "The series was stopped: this run does not run")
        services.job_cancel(job, by="series")
        return "skipped: the series stopped"
    if own is None and (job.attempts or 0) >= settings.IMAGEDL_JOB_MAX_ATTEMPTS:
        services.job_fail(
            job,
            f"The job was interrupted {job.attempts} times before it could finish, so we stopped trying.",
        )
        return "failed: attempts"
    earlier = job.run_id
    try:
        claimed = services.job_start_attempt(job, run_id=own)
    except Exception as exc:
        if not is_transient(exc) or job.run_id == earlier:
            raise
        # The claim landed and a later write did not: the retry resumes this claim
        # (its first attempt's "started" mail included) instead of waiting out its lease.
        return step_back(str(job.id), retry, str(job.run_id), exc)
    if not claimed:
        return f"skipped: {job.status} (claimed by another run)"
    log_context_bind(run_id=job.run_id, series_id=job.series_id)
    try:
        return JobRun(job, adopt=earlier).execute()
    except Exception as exc:
        if not is_transient(exc):
            raise
        # The retry resumes this run (``job.run_id`` now): its attempt is not counted again.
        return step_back(str(job.id), retry, str(job.run_id), exc)


def _series_active(job: Job) -> bool:
    """Whether the series of this run still runs (a stop may have missed this run: it
    cancels the one pending run it read, while an end step was making the next)."""
    series = series_get(job.series_id)
    return series is not None and series.is_active


def step_back(job_id: str, retry: int, run_id: str, exc: BaseException) -> str:
    """A service did not answer: queue the run again with backoff (it resumes its own
    lease), or after the last retry leave the job to the reaper."""
    error = type(exc).__name__
    if retry >= settings.IMAGEDL_TRANSIENT_RETRIES:
        logger.error("job=%s: %s after %d retries; the reaper will queue it again", job_id, error, retry)
        return f"gave up after {retry} retries ({error})"
    delay = min(settings.IMAGEDL_TRANSIENT_BACKOFF_SECONDS * 2**retry, MAX_STEP_BACK_DELAY)
    logger.warning("job=%s: %s; run queued again in %d s", job_id, error, delay)
    metrics.stepback_count(transient_cause(exc))
    if run_id:
        _hold_lease(job_id, run_id, delay)
    scheduling.schedule_once(
        f"job-{job_id}-retry-{retry + 1}",
        scheduling.RUN_TASK,
        (job_id, retry + 1, run_id, error),
        timezone.now() + dt.timedelta(seconds=delay),
    )
    return f"retry in {delay}s ({error})"


def _hold_lease(job_id: str, run_id: str, delay: float) -> None:
    """Extend the stepping-back run's lease through its delay (conditional on its run
    id), so the reaper does not take the job over and count an attempt meanwhile.
    While Cassandra does not answer this cannot be written: the lease then runs out
    and the reaper may take the job over once Cassandra is back."""
    try:
        services.job_renew_lease(Job(id=uuid.UUID(job_id), run_id=uuid.UUID(run_id)), extra_seconds=delay)
    except Exception as exc:
        logger.warning("job=%s: the lease could not be extended (%s)", job_id, type(exc).__name__)


class CancelWatch:
    """Answers "was the job cancelled?", reading Cassandra at most once a second, and
    not at all while the run's progress writes, conditional on the job running, keep
    landing (``confirmed()``: when one last did, on ``time.monotonic``'s clock)."""

    def __init__(self, job_id: uuid.UUID, confirmed: Callable[[], float] = lambda: -math.inf) -> None:
        self.job_id = job_id
        self._confirmed = confirmed
        self._checked = 0.0
        self._cancelled = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._cancelled and now - max(self._checked, self._confirmed()) >= CANCEL_CHECK_EVERY:
            self._checked = now
            current = records.job_get(self.job_id)
            self._cancelled = current is None or current.status == JobStatus.CANCELLED
        return self._cancelled

    def seen(self) -> None:
        """The job was found cancelled (a refused progress write)."""
        self._cancelled = True


class LeaseKeeper:
    """Renews the run's lease every third of its length, in its own thread, unless the
    run's progress writes renewed it within that third (``renewed()``: when one last
    did, on ``time.monotonic``'s clock). ``lost`` is set when the job was taken from the
    run (cancelled, or claimed by another run) or when the lease ran out before a
    renewal got through."""

    def __init__(self, job: Job, renewed: Callable[[], float] = lambda: -math.inf) -> None:
        self.job_id = job.id
        self.run_id = job.run_id
        self._renewed = renewed
        self.wakes = 0  # (how many times it looked: tests wait for it)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._until = time.monotonic() + settings.IMAGEDL_LEASE_SECONDS
        self._thread = threading.Thread(target=self._run, name=f"imagedl-lease-{job.id.hex[:8]}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        every = settings.IMAGEDL_LEASE_SECONDS / 3
        while not self._stop.wait(every):
            self.wakes += 1
            renewed = self._renewed()
            if time.monotonic() - renewed < every:  # a progress write renewed it
                self._until = renewed + settings.IMAGEDL_LEASE_SECONDS
                continue
            try:
                if not services.job_renew_lease(Job(id=self.job_id, run_id=self.run_id)):
                    self.lost.set()
                    return
                self._until = time.monotonic() + settings.IMAGEDL_LEASE_SECONDS
            except Exception as exc:  # Cassandra did not answer: try again, unless too late
                logger.warning("job=%s: lease renewal failed (%s)", self.job_id, type(exc).__name__)
            if time.monotonic() >= self._until:
                self.lost.set()
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class JobRun:
    """One attempt at a job, by the run ``job.run_id``. Its callbacks run in the
    collector's thread."""

    def __init__(self, job: Job, *, adopt: uuid.UUID | None = None) -> None:
        self.job = job
        self.run_id: uuid.UUID = job.run_id
        self.request = request_for(job)
        self.workdir = run_workdir(job.id, self.run_id, adopt=adopt)
        self.kept_dir = self.workdir / "kept"
        self.kept_dir.mkdir(exist_ok=True)
        self.lease: LeaseKeeper | None = None
        self.writes = RunWrites(
            job,
            lost=lambda: self.lost,
            on_lost=self._lease_lost,
            lease_every=settings.IMAGEDL_LEASE_SECONDS / 3,
        )
        self.cancelled = CancelWatch(job.id, confirmed=lambda: self.writes.confirmed_at)
        self.positions: dict[int, int] = {}  # id(image) -> its number (file and image row)
        self.engines_started: list[str] = []
        self.engine_outcomes: dict[str, str] = {}  # engine -> ok, empty or failed (counted at the end)
        self.unapplied: list[str] = []  # "Bing could not apply: freshness", one per engine
        self.resumed = self._adopt(adopt) if adopt is not None else []
        self.position = len(self.resumed)  # the last number given

    @property
    def lost(self) -> bool:
        return self.lease is not None and self.lease.lost.is_set()

    def should_stop(self) -> bool:
        return self.lost or self.cancelled()

    def execute(self) -> str:
        self.lease = LeaseKeeper(self.job, renewed=lambda: self.writes.lease_renewed_at)
        try:
            return self._execute()
        finally:
            self.lease.stop()
            for engine, outcome in self.engine_outcomes.items():
                metrics.engine_search_count(engine, outcome)

    def _execute(self) -> str:
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
                on_replaced=self.on_replaced,
                should_stop=self.should_stop,
                already_kept=self.resumed,
                delivered=self._delivered_before(),
                options=gather_options_from_settings(),
            )
            return self._deliver(result)
        except JobCancelled:
            if self.lost:  # another run has the job now (or nobody may): leave it be
                logger.warning("job=%s: run %s lost its lease and stopped", job.id, self.run_id)
                return "stopped: lost the lease"
            services.job_note_cancelled_during_run(job)
            return "cancelled"
        except NothingFound as exc:
            if services.job_fail(job, str(exc)):
                workdir_remove(job.id)
            return "failed: nothing found"
        except Exception as exc:
            if is_transient(exc):
                raise  # job_run steps back; the next try resumes this run
            job_error_log(job.id, exc)  # no message, no locals: they can quote URLs and queries
            services.job_fail(job, plain_failure(exc))
            return "failed: error"

    def _delivered_before(self) -> DuplicateFilter | None:
        """For a run of a recurring series: what the series delivered before (skipped)."""
        if self.job.series_id is None:
            return None
        return delivered_filter(series_history(self.job.series_id))

    # -- callbacks from the download ------------------------------------------------

    def on_event(self, kind: str, message: str, data: dict) -> None:
        if self.lost:
            return
        if kind == "engine_started" and data.get("engine"):
            # With every engine at once, the job used each one started so far.
            self.engines_started.append(str(data["engine"]))
            used = self.engines_started if self.request.engine == ALL else self.engines_started[-1:]
            self._progress(engine_used=",".join(used))
        self._engine_outcome(kind, data)
        if kind == "filters_unapplied" and message not in self.unapplied:
            self.unapplied.append(message)
            self._progress(filters_unapplied="\n".join(self.unapplied))
        services.job_note(self.job, kind, message, **data)

    def _engine_outcome(self, kind: str, data: dict) -> None:
        """Each engine's search ends ok (it yielded), empty (it found nothing) or failed."""
        engine = str(data.get("engine", ""))
        if kind == "engine_started" or (kind == "page_loaded" and engine == "page"):
            self.engine_outcomes[engine] = "ok"
        elif kind == "engine_failed":
            self.engine_outcomes[engine] = "failed"
        elif kind in ("engine_exhausted", "results_end") and data.get("found") == 0:
            self.engine_outcomes[engine] = "empty"

    def on_progress(self, counts: Counts) -> None:
        # (downloaded_count: the images stored, counted by RunWrites)
        self._progress(found_count=counts.found, rejected_count=counts.rejected_total)

    def _progress(self, **counters: int | str) -> None:
        self.writes.progress(**counters)  # written at most once a second

    def _lease_lost(self) -> None:
        """A progress write was refused: the job was cancelled (the run stops and cleans
        up as after any cancel), or it names another run (or none): stop."""
        if self.job.status == JobStatus.CANCELLED:
            self.cancelled.seen()
        elif self.lease is not None:
            self.lease.lost.set()

    def on_kept(self, image: KeptImage) -> None:
        self.position += 1
        self._store(image, self.position)

    def on_replaced(self, image: KeptImage, replaced: KeptImage) -> None:
        """A better copy takes the kept one's number (its file is gone already)."""
        self._store(image, self.positions.pop(id(replaced)))

    def _store(self, image: KeptImage, position: int) -> None:
        """Move the file where a later run would find it, and remember it."""
        name = f"{position:06d}-{image.sha256[:16]}.{image.format}"
        target = self.kept_dir / name
        Path(image.path).replace(target)
        image.path = target
        self.positions[id(image)] = position
        services.job_add_preview(self.job, position, image.sha256, image.preview)
        self.writes.image(position, {"file_name": name, **image.description()})
        metrics.download_bytes_count(image.bytes)

    # -- the outcome ----------------------------------------------------------------

    def _adopt(self, earlier: uuid.UUID) -> list[KeptImage]:
        """The images an earlier run kept whose files came with its folder (on this
        machine), stored again as this run's (on another machine: none, fetched again)."""
        rows = [
            row
            for row in services.job_kept_images(self.job, earlier)
            if (self.kept_dir / row.file_name).exists()
        ]
        adopted, stored = [], {}
        for position, row in enumerate(rows, 1):
            image = KeptImage.from_description(self.kept_dir / row.file_name, row)
            stored[position] = {"file_name": row.file_name, **image.description()}
            self.positions[id(image)] = position
            adopted.append(image)
        if stored and earlier != self.run_id:
            self.writes.adopted(stored)
        return adopted

    def _deliver(self, result: CollectResult) -> str:
        job, request = self.job, self.request
        if self.should_stop() or result.stopped:
            raise JobCancelled
        self._record_outcome(result)
        if not result.kept:
            raise NothingFound(nothing_found_reason(request, result))
        archive = write_archive(
            result.kept[: request.wanted],
            name_stem=request.name_stem,
            path=archive_path(job, self.run_id),
            storage=storage.outputs(),
            scratch=storage.scratch_folder(self.workdir),
            **manifest_shared(request),
            pack=PackOptions(layout=job.pack if job.pack in PACKS else PACK_DEFAULT),
            subject=request.subject,
            from_page=bool(request.page_url),
        )
        services.job_note(job, "archive_written", f"Packed {archive.count} images ({archive.bytes} bytes)")
        if self.should_stop():
            storage.delete(archive.path)
            raise JobCancelled
        # The images still waiting are stored before the outcome; the last counters
        # go with it, in its one conditional write.
        progress = self.writes.finish() | {
            "found_count": result.found,
            "rejected_count": sum(result.rejected.values()),
            "already_delivered": result.rejected.get(ALREADY_DELIVERED, 0),
        }
        if not services.job_complete(
            job, archive_path=archive.path, archive_bytes=archive.bytes, kept=archive.count, progress=progress
        ):
            raise JobCancelled  # cancelled or taken over while the archive was written
        workdir_remove(job.id)
        return f"done: {archive.count}"

    def _record_outcome(self, result: CollectResult) -> None:
        """The run's account, as events written together (one request)."""
        found = f"{result.found} candidate images found"
        events: list = [("candidates_found", found, {"found": result.found})]
        for reason, count in sorted(result.rejected.items()):
            message = f"{count} rejected: {reason.replace('_', ' ')}"
            events.append(("rejected", message, {"reason": reason, "count": count}))
        events.append(("kept", f"{len(result.kept)} valid, unique images kept", {"kept": len(result.kept)}))
        services.job_notes(self.job, events)


def nothing_found_reason(request: Request, result: CollectResult) -> str:
    """Why nothing could be delivered, in words the user reads."""
    if result.found == 0:
        where = "on that page" if request.page_url else "for that search"
        return (
            f"We could not find any images {where}. "
            "The search engines may be blocking us, or there are no results."
        )
    again = result.rejected.get(ALREADY_DELIVERED, 0)
    if again:
        return (
            f"Nothing new this time: {again} of the {result.found} images we found were delivered "
            "to you before, and none of the others passed our checks."
        )
    top = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in Counter(result.rejected).most_common(3))
    return f"We found {result.found} images, but none passed our checks ({top})."


def plain_failure(exc: Exception) -> str:
    """An unexpected error, in words the user reads (the details go to the log)."""
    if isinstance(exc, EngineError):
        return f"The image search failed: {exc}"
    return "An unexpected error stopped the job. Our operators have the details; you can try again."
