"""Over-fetch: turn a lazy stream of candidate URLs into N valid, unique images.

Candidates are drawn only as needed and handed to download threads, always picking
the next candidate whose host has a free slot, so one slow host never blocks the
others. Each file is validated (full decode) and de-duplicated as it arrives; fetching
stops as soon as ``wanted`` images are kept (in-flight extras are discarded).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import queue
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from downloader.dedupe import DuplicateFilter
from downloader.http import Fetcher, FetchResult, host_key
from downloader.validation import ImageRules, Validation, convert_file, validate_file

__all__ = ["Candidate", "CollectResult", "ImageRules", "KeptImage", "collect_images"]

# progress(kind, **info): kinds "kept", "rejected", "replaced" (image= takes replaced='s
# place in the result: a better copy of the same picture; replaced= is deleted)
Progress = Callable[..., None]


@dataclass(frozen=True)
class Candidate:
    url: str
    page_url: str = ""
    width: int | None = None
    height: int | None = None
    title: str = ""
    engine: str = ""


@dataclass
class KeptImage:
    path: Path
    source_url: str
    page_url: str
    width: int
    height: int
    format: str
    bytes: int
    sha256: str
    phash: str = ""


@dataclass
class CollectResult:
    """The run's account: every candidate drawn (``found``) was either kept (this run),
    rejected for a reason, or left unused because enough were kept first."""

    asked: int
    found: int
    kept: list[KeptImage]
    rejected: dict[str, int] = field(default_factory=dict)
    stopped: bool = False
    unused: int = 0
    resumed: int = 0  # of ``kept``, validated by an earlier attempt (not in ``found``)


@dataclass
class _Outcome:
    candidate: Candidate
    fetch: FetchResult
    check: Validation | None
    path: Path | None


class _Prefetch:
    """Draws candidates from the (possibly slow, scrolling) source in its own thread,
    so downloads keep running while a search engine waits for its next batch.

    The queue is bounded: the source is never asked for far more than is needed.
    """

    _END = object()

    def __init__(self, source: Iterable[Candidate], size: int, on_item: Callable[[], None]) -> None:
        self._on_item = on_item  # wakes the collector when a candidate arrives
        self._queue: queue.Queue = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(iter(source),), name="imagedl-candidates", daemon=True
        )
        self._thread.start()

    def _run(self, source: Iterator[Candidate]) -> None:
        try:
            for candidate in source:
                if not self._put(candidate):
                    return
        except BaseException as exc:  # reported to the caller, not lost in the thread
            self.error = exc
        self._put(self._END)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                self._on_item()
                return True
            except queue.Full:
                continue
        return False

    def get(self, timeout: float) -> Candidate | object | None:
        """A candidate, None if none is ready yet, or _END when the source is done."""
        try:
            return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def close(self, wait: float = 30.0) -> None:
        self._stop.set()
        # The thread may be inside a browser wait; the caller quits the browser only
        # after it has stopped using it.
        self._thread.join(wait)


# Names for downloads in flight: unique within the process (the counter) and across
# processes sharing a work folder (the tag), without a urandom call per file.
_RUN_TAG = uuid.uuid4().hex[:12]
_file_numbers = itertools.count(1)


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 16):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


def _download_and_check(
    fetcher: Fetcher,
    candidate: Candidate,
    workdir: Path,
    rules: ImageRules,
    stop: threading.Event,
    fetched_callback: Callable[[Candidate], None],
) -> _Outcome:
    path = workdir / f"dl-{_RUN_TAG}-{next(_file_numbers)}"
    try:
        fetched = fetcher.fetch(candidate.url, path, stop=stop)
    finally:
        # The host's slot is free as soon as the bytes are in: the next download from
        # that host starts while this file is being decoded.
        fetched_callback(candidate)
    if not fetched.ok:
        return _Outcome(candidate, fetched, None, None)
    check = validate_file(path, rules)
    if not check.ok:
        path.unlink(missing_ok=True)
        return _Outcome(candidate, fetched, check, None)
    if rules.output_format and check.format != rules.output_format:
        try:
            path = convert_file(path, rules.output_format)
        except (OSError, ValueError, TypeError):
            path.unlink(missing_ok=True)
            return _Outcome(candidate, fetched, Validation(False, "conversion_failed", check.format), None)
        # The manifest describes the file in the archive: the converted bytes.
        check.format = rules.output_format
        fetched.bytes, fetched.sha256 = _size_and_sha256(path)
    return _Outcome(candidate, fetched, check, path)


def _rank(image: KeptImage) -> tuple[int, int]:
    """Which of two copies of a picture to keep: more pixels, then more bytes."""
    return (image.width * image.height, image.bytes)


def collect_images(
    candidates: Iterable[Candidate],
    *,
    wanted: int,
    workdir: Path,
    rules: ImageRules | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    already_kept: Iterable[KeptImage] = (),
    fetcher: Fetcher | None = None,
) -> CollectResult:
    """Download candidates until ``wanted`` valid, unique images are kept.

    ``candidates`` may be a lazy generator (a search engine scrolling for more).
    ``already_kept`` are images a previous attempt validated: they count towards
    ``wanted``, seed the duplicate filter, and their URLs are not fetched again.
    ``progress("kept", image=KeptImage)`` / ``progress("rejected", reason=..., url=...)``
    is called from this thread as results arrive. ``should_stop()`` is polled between
    downloads; when it returns True the run ends with ``stopped=True``.
    """
    from django.conf import settings

    rules = rules or ImageRules()
    if not rules.max_pixels:
        rules.max_pixels = settings.IMAGEDL_MAX_PIXELS
    workdir.mkdir(parents=True, exist_ok=True)
    own_fetcher = fetcher is None
    fetcher = fetcher or Fetcher()
    kept = list(already_kept)
    resumed = len(kept)
    duplicates = DuplicateFilter()
    seen_urls: set[str] = set()
    for image in kept:
        duplicates.offer(image.sha256, image.phash, rank=_rank(image), item=image)
        seen_urls.add(image.source_url)
    resumed_images = {id(image) for image in kept}
    rejected: Counter = Counter()
    found = 0
    exhausted = False
    pending: deque[Candidate] = deque()
    in_flight: dict[Future, Candidate] = {}  # fetching or being validated
    per_host: Counter = Counter()  # fetching, by host
    fetching = 0
    slots = threading.Lock()  # guards per_host and fetching (download threads release)
    wake = threading.Event()  # a download finished fetching, or a future finished
    stop = threading.Event()
    # Threads beyond the fetch limit validate the files already fetched.
    checkers = max(2, os.cpu_count() or 2)
    # Queued candidates waiting for a free host slot; drawing more forces the engine
    # to scroll for results that may never be needed.
    lookahead = max(8, fetcher.per_host * 2)

    def fetched_callback(candidate: Candidate) -> None:
        nonlocal fetching
        with slots:
            per_host[host_key(candidate.url)] -= 1
            fetching -= 1
        wake.set()

    def report(kind: str, **info) -> None:
        if progress is not None:
            progress(kind, **info)

    def reject(reason: str, url: str) -> None:
        rejected[reason] += 1
        report("rejected", reason=reason, url=url)

    def draw(block: bool = False) -> bool:
        nonlocal exhausted, found
        while not exhausted:
            item = prefetch.get(timeout=0.2 if block else 0)
            if item is None:
                return False
            if item is _Prefetch._END:
                exhausted = True
                if prefetch.error is not None:
                    raise prefetch.error
                return False
            if item.url in seen_urls:
                continue
            seen_urls.add(item.url)
            found += 1
            pending.append(item)
            return True
        return False

    def next_ready() -> Candidate | None:
        # Prefer a queued candidate whose host has a free slot; draw more if none does.
        while True:
            for index, candidate in enumerate(pending):
                with slots:
                    free = per_host[host_key(candidate.url)] < fetcher.per_host
                if free:
                    del pending[index]
                    return candidate
            if len(pending) >= lookahead or not draw():
                return None

    stopped = False
    prefetch = _Prefetch(candidates, size=max(lookahead, fetcher.concurrency), on_item=wake.set)
    threads = fetcher.concurrency + checkers
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="imagedl-dl") as pool:
        try:
            while len(kept) < wanted:
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                wake.clear()  # anything that happens from here on wakes the wait below
                # Keep just enough downloads running to finish: never far more than needed.
                while (
                    fetching < fetcher.concurrency
                    and len(in_flight) < threads
                    and len(in_flight) < (wanted - len(kept)) + fetcher.per_host
                ):
                    candidate = next_ready()
                    if candidate is None:
                        break
                    with slots:
                        per_host[host_key(candidate.url)] += 1
                        fetching += 1
                    future = pool.submit(
                        _download_and_check, fetcher, candidate, workdir, rules, stop, fetched_callback
                    )
                    future.add_done_callback(lambda _future: wake.set())
                    in_flight[future] = candidate
                if not in_flight:
                    if exhausted and not pending:
                        break
                    draw(block=True)  # nothing running: wait for the source
                    continue
                done = [future for future in in_flight if future.done()]
                if not done:
                    wake.wait(1.0)
                    continue
                for future in done:
                    candidate = in_flight.pop(future)
                    outcome = future.result()
                    if not outcome.fetch.ok:
                        reject(outcome.fetch.reason, candidate.url)
                        continue
                    if outcome.check is None or not outcome.check.ok or outcome.path is None:
                        reject(outcome.check.reason if outcome.check else "not_an_image", candidate.url)
                        continue
                    if len(kept) >= wanted:
                        outcome.path.unlink(missing_ok=True)
                        continue
                    image = KeptImage(
                        path=outcome.path,
                        source_url=candidate.url,
                        page_url=candidate.page_url,
                        width=outcome.check.width,
                        height=outcome.check.height,
                        format=outcome.check.format,
                        bytes=outcome.fetch.bytes,
                        sha256=outcome.fetch.sha256,
                        phash=outcome.check.phash,
                    )
                    # Of two near duplicates the better one stays, whichever came first.
                    verdict = duplicates.offer(image.sha256, image.phash, rank=_rank(image), item=image)
                    if verdict.reason:
                        outcome.path.unlink(missing_ok=True)
                        reject(verdict.reason, candidate.url)
                        continue
                    if verdict.replaces is not None:
                        old = verdict.replaces
                        kept[next(i for i, k in enumerate(kept) if k is old)] = image
                        Path(old.path).unlink(missing_ok=True)
                        if id(old) in resumed_images:
                            resumed -= 1
                        else:
                            rejected["duplicate_near"] += 1
                        report("replaced", image=image, replaced=old)
                        continue
                    kept.append(image)
                    report("kept", image=image)
        finally:
            prefetch.close()
            stop.set()  # in-flight downloads end at their next chunk
            for future in list(in_flight):
                future.cancel()
    kept_paths = {image.path for image in kept}
    for leftover in workdir.glob("dl-*"):
        if leftover not in kept_paths:
            leftover.unlink(missing_ok=True)
    if own_fetcher:
        fetcher.close()
    return CollectResult(
        asked=wanted,
        found=found,
        kept=kept,
        rejected=dict(rejected),
        stopped=stopped,
        unused=found - (len(kept) - resumed) - sum(rejected.values()),
        resumed=resumed,
    )
