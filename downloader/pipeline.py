"""The job pipeline: search, download, validate, pack, deliver.

``gather`` is the work itself (used by the worker and by ``manage.py fetch_images``):
open one browser, let the search engines yield candidate URLs lazily, feed them to the
download engine until enough valid, unique images are kept, and stop.

``run_job`` wraps it for a scheduled job: it loads the job, counts the attempt,
records progress and events through ``jobs.services`` as it goes, resumes from the
images a killed worker had already validated, honours cancellation at every step,
writes the archive and records the outcome.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.utils.text import slugify

from downloader.archive import write_archive
from downloader.browser import open_browser
from downloader.collect import CollectResult, ImageRules, KeptImage, collect_images
from downloader.egress import EgressGuard
from downloader.engines import engine_order, extract_page_images, search_with_fallback
from downloader.engines.base import SearchRules
from downloader.workdir import job_workdir, remove_workdir
from jobs import records, services
from jobs.events import record_event
from jobs.models import Job, JobStatus

logger = logging.getLogger("imagedl.pipeline")

EventSink = Callable[[str, str, dict], None]  # (kind, message, data)


class JobCancelled(Exception):
    """The job was cancelled while it ran."""


class NothingFound(Exception):
    """No valid image could be kept; the message is meant for the user."""


@dataclass
class Request:
    """What to gather, independent of where the request came from."""

    wanted: int
    query: str = ""
    page_url: str = ""
    engine: str = "auto"
    formats: frozenset[str] = frozenset()
    min_width: int = 0
    min_height: int = 0
    output_format: str | None = None
    min_side: int | None = None  # the junk floor; None: IMAGEDL_MIN_SIDE (--min-size sets it)

    @property
    def subject(self) -> str:
        return self.query or self.page_url

    @property
    def name_stem(self) -> str:
        return slugify(self.subject)[:60] or "images"

    @classmethod
    def from_job(cls, job: Job) -> Request:
        return cls(
            wanted=job.requested_count,
            query=job.query or "",
            page_url=job.page_url or "",
            engine=job.engine or "auto",
            formats=frozenset(job.formats or ()),
            min_width=job.min_width or 0,
            min_height=job.min_height or 0,
            output_format=job.output_format,
        )


OVERFETCH_FACTOR = 10


@dataclass
class Counters:
    """Live counters, updated from download threads, flushed to the job now and then."""

    found: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _candidates(request: Request, driver, on_event: EventSink, counters: Counters) -> Iterator:
    """Candidate URLs, lazily, from the page extractor or the engines in fallback order."""
    rules = SearchRules(
        formats=set(request.formats), min_width=request.min_width, min_height=request.min_height
    )

    def engine_event(kind: str, data: dict) -> None:
        on_event(kind, _describe_engine_event(kind, data), data)

    # Candidates are drawn lazily, only while the collector needs more, so the engines
    # may offer many more than wanted (most results can be junk); the bound only ends
    # a search whose results never pass.
    overfetch = request.wanted * OVERFETCH_FACTOR + 100
    if request.page_url:
        source = extract_page_images(driver, request.page_url, wanted=overfetch, on_event=engine_event)
    else:
        order = engine_order(request.engine)
        source = search_with_fallback(order, driver, request.query, overfetch, rules, engine_event)
    for candidate in source:
        with counters.lock:
            counters.found += 1
        yield candidate


def _describe_engine_event(kind: str, data: dict) -> str:
    engine = data.get("engine", "")
    texts = {
        "engine_started": f"Searching with {engine}",
        "page_loaded": f"Loaded the {engine or 'page'} results",
        "scrolled": f"Scrolled for more results ({data.get('found', '?')} so far)",
        "see_more_clicked": "Clicked 'see more images'",
        "results_end": f"{engine or 'The page'} has no more results",
        "engine_failed": f"{engine} failed ({data.get('reason', 'error')}); trying the next engine",
        "engine_exhausted": f"{engine} ran out of results; trying the next engine",
    }
    return texts.get(kind, kind.replace("_", " "))


def gather(
    request: Request,
    workdir: Path,
    *,
    on_event: EventSink,
    on_progress: Callable[[Counters], None] | None = None,
    on_kept: Callable[[KeptImage], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    already_kept: list[KeptImage] | None = None,
) -> CollectResult:
    """Search and download until ``request.wanted`` valid, unique images are kept."""
    counters = Counters(kept=len(already_kept or []))
    image_rules = ImageRules(
        formats=set(request.formats),
        min_width=request.min_width,
        min_height=request.min_height,
        output_format=request.output_format,
        min_side=request.min_side,
    )

    def progress(kind: str, **info) -> None:
        with counters.lock:
            if kind == "kept":
                counters.kept += 1
            elif kind == "rejected":
                counters.rejected[info.get("reason", "unknown")] += 1
        if kind == "kept" and on_kept is not None and "image" in info:
            on_kept(info["image"])
        if on_progress is not None:
            on_progress(counters)

    remaining = request.wanted - len(already_kept or [])
    if remaining <= 0:
        return CollectResult(
            asked=request.wanted, found=0, kept=list(already_kept or []), rejected={}, stopped=False
        )
    with contextlib.ExitStack() as stack:  # one browser per job, always quit (then its guard)
        # A user's page decides what the browser fetches: all of it goes through the guard.
        egress = stack.enter_context(EgressGuard()) if request.page_url else None
        driver = stack.enter_context(open_browser(egress=egress))
        candidates = _candidates(request, driver, on_event, counters)
        result = collect_images(
            candidates,
            wanted=request.wanted,
            workdir=workdir,
            rules=image_rules,
            progress=progress,
            should_stop=should_stop,
            already_kept=list(already_kept or []),
        )
    return result


# --- the scheduled job -------------------------------------------------------------


class _StatusWatch:
    """Answers "was the job cancelled?" reading Cassandra at most once a second."""

    def __init__(self, job_id: uuid.UUID) -> None:
        self.job_id = job_id
        self._checked = 0.0
        self._cancelled = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if not self._cancelled and now - self._checked >= 1.0:
            self._checked = now
            current = records.get_job(self.job_id)
            self._cancelled = current is None or current.status == JobStatus.CANCELLED
        return self._cancelled


def _resume_images(job: Job, workdir: Path) -> list[KeptImage]:
    """Images a previous attempt kept, whose files are still in the work folder."""
    kept = []
    for image in records.job_images(job.id):
        path = workdir / "kept" / image.file_name
        if path.exists():
            kept.append(
                KeptImage(
                    path=path,
                    source_url=image.source_url,
                    page_url=image.page_url or "",
                    width=image.width,
                    height=image.height,
                    format=image.format,
                    bytes=image.bytes,
                    sha256=image.sha256,
                    phash=image.phash or "",
                )
            )
    return kept


def run_job(job_id: uuid.UUID | str) -> str:
    """Run one job to its end. Safe to call again after a crash (the task re-delivery)."""
    job = records.get_job(job_id)
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
    request = Request.from_job(job)
    workdir = job_workdir(job.id)
    (workdir / "kept").mkdir(exist_ok=True)
    watch = _StatusWatch(job.id)
    already = _resume_images(job, workdir)
    if already:
        record_event(job.id, "resumed", f"Resuming with {len(already)} images kept by the previous attempt")

    def on_event(kind: str, message: str, data: dict) -> None:
        if kind == "engine_started" and data.get("engine"):
            services.job_record_progress(job, engine_used=str(data["engine"]))
        record_event(job.id, kind, message, **{k: v for k, v in data.items() if k != "engine_object"})

    last_flush = [0.0]

    def on_progress(counters: Counters) -> None:
        now = time.monotonic()
        if now - last_flush[0] < 0.5:
            return
        last_flush[0] = now
        with counters.lock:
            fields = {
                "found_count": counters.found,
                "downloaded_count": counters.kept,
                "rejected_count": sum(counters.rejected.values()),
            }
        services.job_record_progress(job, **fields)

    position = [len(already)]
    position_lock = threading.Lock()

    def on_kept(image: KeptImage) -> None:
        # Move the file where a resumed attempt will find it and remember it.
        with position_lock:
            position[0] += 1
            number = position[0]
        name = f"{number:06d}-{image.sha256[:16]}.{image.format}"
        target = workdir / "kept" / name
        Path(image.path).replace(target)
        image.path = target
        services.job_add_image(
            job,
            number,
            file_name=name,
            source_url=image.source_url,
            page_url=image.page_url,
            width=image.width,
            height=image.height,
            format=image.format,
            bytes=image.bytes,
            sha256=image.sha256,
            phash=image.phash,
        )

    try:
        result = gather(
            request,
            workdir,
            on_event=on_event,
            on_progress=on_progress,
            on_kept=on_kept,
            should_stop=watch,
            already_kept=already,
        )
        if watch() or result.stopped:
            raise JobCancelled
        _record_outcome_events(job, result)
        if not result.kept:
            raise NothingFound(_nothing_found_reason(request, result))
        archive = write_archive(
            result.kept[: request.wanted],
            name_stem=request.name_stem,
            path=f"archives/{job.id.hex}.zip",
        )
        record_event(job.id, "archive_written", f"Packed {archive.count} images ({archive.bytes} bytes)")
        if watch():
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
    except JobCancelled:
        services.job_note_cancelled_during_run(job)
        return "cancelled"
    except NothingFound as exc:
        services.job_fail(job, str(exc))
        remove_workdir(job.id)
        return "failed: nothing found"
    except Exception as exc:
        logger.exception("job=%s failed", job.id)
        services.job_fail(job, _plain_failure(exc))
        return "failed: error"


def _record_outcome_events(job: Job, result: CollectResult) -> None:
    record_event(
        job.id,
        "candidates_found",
        f"{result.found} candidate images found",
        found=result.found,
    )
    for reason, count in sorted(result.rejected.items()):
        record_event(
            job.id, "rejected", f"{count} rejected: {reason.replace('_', ' ')}", reason=reason, count=count
        )
    record_event(job.id, "kept", f"{len(result.kept)} valid, unique images kept", kept=len(result.kept))


def _nothing_found_reason(request: Request, result: CollectResult) -> str:
    if result.found == 0:
        where = "on that page" if request.page_url else "for that search"
        return (
            f"We could not find any images {where}. "
            "The search engines may be blocking us, or there are no results."
        )
    top = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in Counter(result.rejected).most_common(3))
    return f"We found {result.found} images, but none passed our checks ({top})."


def _plain_failure(exc: Exception) -> str:
    from downloader.engines.base import EngineError

    if isinstance(exc, EngineError):
        return f"The image search failed: {exc}"
    return "An unexpected error stopped the job. Our operators have the details; you can try again."
