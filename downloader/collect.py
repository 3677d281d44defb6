"""Over-fetch: turn a lazy stream of candidate URLs into N valid, unique images.

Candidates are drawn only as needed and handed to download threads, always picking
the next candidate whose host has a free slot, so one slow host never blocks the
others. Each file is validated (full decode) and de-duplicated as it arrives; fetching
stops as soon as ``wanted`` images are kept (in-flight extras are discarded). Decodes
run on as many threads at once as there are cores, while the other downloads go on.

The download thread that validated a file also judges it against the duplicate filter
(and the images delivered before), one thread at a time, each judgement numbered; the
collecting thread only books the verdicts, in the order they were given (a better copy
is booked after the copy it replaces), so its loop stays free to start downloads.
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
from typing import Any, ClassVar

from downloader.dedupe import DuplicateFilter
from downloader.http import Fetcher, FetchResult, host_key
from downloader.rights import Rights
from downloader.validation import ImageRules, Validation, ValidationLimits, convert_file, validate_file

__all__ = [
    "Candidate",
    "CollectResult",
    "Collector",
    "Counts",
    "ImageRules",
    "KeptImage",
    "ValidationLimits",
    "collect_images",
]

ALREADY_DELIVERED = "already_delivered"  # the reason for a copy of an image delivered before

# progress(kind, **info): kinds "found", "kept", "rejected", "replaced" (image= takes
# replaced='s place in the result: a better copy of the same picture; replaced= is deleted)
Progress = Callable[..., None]


@dataclass(frozen=True)
class Candidate:
    url: str
    page_url: str = ""
    width: int | None = None
    height: int | None = None
    caption: str = ""  # the engine's title, or the page's alt/figcaption/title (downloader.captions)
    engine: str = ""
    rank: int = 0  # its place in the engine's results (or on the page), from 1; 0: none
    license: str = ""  # what the page states (rel=license, schema.org): downloader.rights
    creator: str = ""  # what the page states (schema.org creator)


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
    preview: bytes = field(default=b"", repr=False)  # a small JPEG (downloader.previews)
    # Credits: where the candidate came from (see Candidate).
    caption: str = ""
    engine: str = ""
    rank: int = 0
    license: str = ""  # stated by the image itself (XMP), else by its page
    license_from: str = ""  # "image", "page" or "" (none stated)
    creator: str = ""  # EXIF Artist, XMP dc:creator, else the page's schema.org creator
    copyright: str = ""  # EXIF Copyright, XMP dc:rights
    licensor: str = ""  # XMP plus:Licensor

    DESCRIPTION: ClassVar[tuple[str, ...]] = (
        "source_url",
        "page_url",
        "width",
        "height",
        "format",
        "bytes",
        "sha256",
        "phash",
        "caption",
        "engine",
        "rank",
        "license",
        "license_from",
        "creator",
        "copyright",
        "licensor",
    )

    def description(self) -> dict[str, object]:
        """Everything but the file's path: what a record of the image keeps."""
        return {name: getattr(self, name) for name in self.DESCRIPTION}

    @classmethod
    def from_description(cls, path: Path, record: object) -> KeptImage:
        """The image at ``path`` described by ``record`` (any object with those attributes)."""
        values = {name: getattr(record, name) for name in cls.DESCRIPTION}
        for name in cls.DESCRIPTION:
            if values[name] is None and name not in ("width", "height", "bytes", "rank"):
                values[name] = ""  # rows stored before a column existed: None
        # Rows stored before captions kept the engine's title in ``title``.
        values["caption"] = values["caption"] or str(getattr(record, "title", "") or "")
        values["rank"] = values["rank"] or 0
        return cls(path=path, **values)


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
    image: KeptImage | None = None  # a valid file, described; judged below
    reason: str = ""  # the judgement's reason to reject it (a duplicate, delivered before)
    replaces: KeptImage | None = None  # a kept copy it outranks
    number: int = 0  # the judgement's place in the order of judgements, from 1; 0: none


class _Prefetch:
    """Draws candidates from the (possibly slow, scrolling) source in its own thread,
    so downloads keep running while a search engine waits for its next batch.

    The queue is bounded: the source is never asked for far more than is needed.
    """

    END = object()

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
        self._put(self.END)

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
        """A candidate, None if none is ready yet, or END when the source is done."""
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


@dataclass(frozen=True)
class _Checking:
    """How a download thread checks what it fetched: the rules, whether to make a
    preview, the slots for decoding (as many as the machine has cores), and the judge of
    a valid image (``Collector._judge``: duplicates, images delivered before)."""

    rules: ImageRules
    previews: bool
    decoders: threading.BoundedSemaphore
    judge: Callable[[_Outcome], None]


def _download_and_check(
    fetcher: Fetcher,
    candidate: Candidate,
    workdir: Path,
    checking: _Checking,
    stop: threading.Event,
    fetched_callback: Callable[[Candidate], None],
) -> _Outcome:
    path = workdir / f"dl-{_RUN_TAG}-{next(_file_numbers)}"
    try:
        fetched = fetcher.fetch(candidate.url, path, stop=stop)
    finally:
        # The host's slot is free as soon as the bytes are in: the next download from
        # that host starts while this file waits for a decoder and is decoded.
        fetched_callback(candidate)
    if not fetched.ok:
        return _Outcome(candidate, fetched, None, None)
    rules = checking.rules
    with checking.decoders:
        if stop.is_set():  # the run has ended while this file waited
            path.unlink(missing_ok=True)
            return _Outcome(candidate, FetchResult(False, candidate.url, "stopped"), None, None)
        check = validate_file(path, rules, preview=checking.previews)
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
    outcome = _Outcome(candidate, fetched, check, path, _kept_image(candidate, fetched, check, path))
    checking.judge(outcome)
    return outcome


def _kept_image(candidate: Candidate, fetched: FetchResult, check: Validation, path: Path) -> KeptImage:
    return KeptImage(
        path=path,
        source_url=candidate.url,
        page_url=candidate.page_url,
        width=check.width,
        height=check.height,
        format=check.format,
        bytes=fetched.bytes,
        sha256=fetched.sha256,
        phash=check.phash,
        preview=check.preview,
        caption=candidate.caption,
        engine=candidate.engine,
        rank=candidate.rank,
        **_credits(candidate, check.rights),
    )


def _credits(candidate: Candidate, rights: Rights) -> dict[str, str]:
    """An image's rights: what the file itself states first, else what its page does."""
    license_from = "image" if rights.license else "page" if candidate.license else ""
    return {
        "license": rights.license or candidate.license,
        "license_from": license_from,
        "creator": rights.creator or candidate.creator,
        "copyright": rights.copyright,
        "licensor": rights.licensor,
    }


def _rank(image: KeptImage) -> tuple[int, int]:
    """Which of two copies of a picture to keep: more pixels, then more bytes."""
    return (image.width * image.height, image.bytes)


@dataclass
class Counts:
    """The collector's live account, read by progress callbacks (from its thread)."""

    found: int = 0  # distinct new candidates drawn from the source
    kept: int = 0  # kept so far, resumed ones included
    rejected: Counter = field(default_factory=Counter)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class Collector:
    """Downloads candidates until ``wanted`` valid, unique images are kept.

    The one place where candidate URLs are de-duplicated and counted as found: every
    source (engines, a page, a URL list, a resumed attempt's images) passes through it.
    ``progress("kept", image=KeptImage)`` / ``progress("rejected", reason=..., url=...)``
    / ``progress("found", url=...)`` is called from the collecting thread as things
    happen; ``counts`` holds the totals at that moment. ``should_stop()`` is polled
    between downloads; when it returns True the run ends with ``stopped=True``.
    ``limits`` fill in what ``rules`` leave open (the junk floor, the pixel and time
    limits); ``fetcher`` is closed after the run only when the Collector made it.
    ``previews``: make each kept image's small JPEG (``KeptImage.preview``, the web
    shows it); a command that only writes files has no use for them.
    """

    def __init__(
        self,
        *,
        wanted: int,
        workdir: Path,
        rules: ImageRules | None = None,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        already_kept: Iterable[KeptImage] = (),
        fetcher: Fetcher | None = None,
        delivered: DuplicateFilter | None = None,
        limits: ValidationLimits | None = None,
        previews: bool = True,
    ) -> None:
        self.wanted = wanted
        self.workdir = workdir
        self.rules = (rules or ImageRules()).within(limits or ValidationLimits())
        self.progress = progress or (lambda kind, **info: None)
        self.should_stop = should_stop or (lambda: False)
        self._own_fetcher = fetcher is None
        self.fetcher = fetcher or Fetcher()
        self.kept: list[KeptImage] = list(already_kept)
        self.resumed = len(self.kept)
        self.counts = Counts(kept=self.resumed)
        self.duplicates = DuplicateFilter()
        # Images delivered before (a recurring series): a copy of one, exact or near,
        # is rejected as ``already_delivered`` and the run goes on to the next candidate.
        self.delivered = delivered
        self.seen_urls: set[str] = set()
        for image in self.kept:
            self.duplicates.offer(image.sha256, image.phash, rank=_rank(image), item=image)
            self.seen_urls.add(image.source_url)
        self.resumed_ids = {id(image) for image in self.kept}
        self.exhausted = False
        self.pending: deque[Candidate] = deque()
        self.in_flight: dict[Future, Candidate] = {}  # fetching or being validated
        self.finished: deque[Future] = deque()  # ... and done, in the order they finished
        self.per_host: Counter = Counter()  # fetching, by host
        self.fetching = 0
        self.slots = threading.Lock()  # guards per_host and fetching (download threads release)
        self.wake = threading.Event()  # a download finished fetching, or a future finished
        self.stop = threading.Event()
        # Files are decoded by as many threads at once as there are cores (more only
        # contend for them and hold more images in memory); the others wait, holding
        # no pixels, while the fetches go on. Threads beyond the fetch limit are for
        # the files fetched and waiting for their decode: up to as many again.
        decoders = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))
        self.checking = _Checking(self.rules, previews, decoders, self._judge)
        self._judging = threading.Lock()  # one judgement at a time, numbered in order
        self._judged = 0  # judgements given
        self._booked = 0  # ... and booked by the collecting thread
        self._unbooked: dict[int, tuple[Candidate, _Outcome]] = {}  # judged out of turn
        self.threads = 2 * self.fetcher.concurrency
        # Queued candidates waiting for a free host slot; drawing more forces the engine
        # to scroll for results that may never be needed.
        self.lookahead = max(8, self.fetcher.per_host * 2)
        self.prefetch: _Prefetch | None = None

    # -- the run --------------------------------------------------------------------

    def run(self, candidates: Iterable[Candidate]) -> CollectResult:
        """Draw from ``candidates`` (possibly a lazy, scrolling generator) until done."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        stopped = False
        self.prefetch = _Prefetch(
            candidates, size=max(self.lookahead, self.fetcher.concurrency), on_item=self.wake.set
        )
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="imagedl-dl") as pool:
            try:
                stopped = self._loop(pool)
            finally:
                self.prefetch.close()
                self.stop.set()  # in-flight downloads end at their next chunk
                for future in list(self.in_flight):
                    future.cancel()
        self._remove_leftovers()
        if self._own_fetcher:
            self.fetcher.close()
        new = len(self.kept) - self.resumed
        return CollectResult(
            asked=self.wanted,
            found=self.counts.found,
            kept=self.kept,
            rejected=dict(self.counts.rejected),
            stopped=stopped,
            unused=self.counts.found - new - self.counts.rejected_total,
            resumed=self.resumed,
        )

    def _loop(self, pool: ThreadPoolExecutor) -> bool:
        """Start downloads and settle finished ones; True when stopped from outside."""
        while len(self.kept) < self.wanted:
            if self.should_stop():
                return True
            self.wake.clear()  # anything that happens from here on wakes the wait below
            self._start_downloads(pool)
            if not self.in_flight:
                if self.exhausted and not self.pending:
                    break
                self._draw(block=True)  # nothing running: wait for the source
                continue
            if not self.finished:
                self.wake.wait(1.0)
                continue
            while self.finished:
                future = self.finished.popleft()
                self._settle(self.in_flight.pop(future), future.result())
            self._book_in_order()
        return False

    def _start_downloads(self, pool: ThreadPoolExecutor) -> None:
        # Keep just enough downloads running to finish: never far more than needed.
        needed = (self.wanted - len(self.kept)) + self.fetcher.per_host
        while (
            self.fetching < self.fetcher.concurrency
            and len(self.in_flight) < self.threads
            and len(self.in_flight) < needed
        ):
            candidate = self._next_ready()
            if candidate is None:
                return
            with self.slots:
                self.per_host[host_key(candidate.url)] += 1
                self.fetching += 1
            future = pool.submit(
                _download_and_check,
                self.fetcher,
                candidate,
                self.workdir,
                self.checking,
                self.stop,
                self._fetched,
            )
            future.add_done_callback(self._finished)
            self.in_flight[future] = candidate

    def _finished(self, future: Future) -> None:
        """Called from a download thread when its future is done (no scan of every
        future in flight for the done ones)."""
        self.finished.append(future)
        self.wake.set()

    def _fetched(self, candidate: Candidate) -> None:
        """Called from a download thread once its bytes are in: the host slot is free."""
        with self.slots:
            self.per_host[host_key(candidate.url)] -= 1
            self.fetching -= 1
        self.wake.set()

    # -- candidates -----------------------------------------------------------------

    def _draw(self, block: bool = False) -> bool:
        """Move one new, distinct candidate from the source to ``pending``."""
        assert self.prefetch is not None
        while not self.exhausted:
            item = self.prefetch.get(timeout=0.2 if block else 0)
            if item is None:
                return False
            if item is _Prefetch.END:
                self.exhausted = True
                if self.prefetch.error is not None:
                    raise self.prefetch.error
                return False
            assert isinstance(item, Candidate)
            if item.url in self.seen_urls:
                continue
            self.seen_urls.add(item.url)
            self.counts.found += 1
            self.pending.append(item)
            self.progress("found", url=item.url)
            return True
        return False

    def _next_ready(self) -> Candidate | None:
        """A queued candidate whose host has a free slot; draws more if none has."""
        while True:
            for index, candidate in enumerate(self.pending):
                with self.slots:
                    free = self.per_host[host_key(candidate.url)] < self.fetcher.per_host
                if free:
                    del self.pending[index]
                    return candidate
            if len(self.pending) >= self.lookahead or not self._draw():
                return None

    # -- outcomes -------------------------------------------------------------------

    def _judge(self, outcome: _Outcome) -> None:
        """In the download thread: is the valid image in ``outcome`` a copy of one
        delivered before, or of one kept (exact or near)? Judged one at a time, each
        judgement numbered for the collecting thread to book in that order."""
        image = outcome.image
        assert image is not None
        with self._judging:
            if self.delivered is not None and self.delivered.match(image.sha256, image.phash):
                outcome.reason = ALREADY_DELIVERED
            else:
                # Of two near duplicates the better one stays, whichever came first.
                verdict = self.duplicates.offer(image.sha256, image.phash, rank=_rank(image), item=image)
                outcome.reason, outcome.replaces = verdict.reason or "", verdict.replaces
            self._judged += 1
            outcome.number = self._judged

    def _settle(self, candidate: Candidate, outcome: _Outcome) -> None:
        if not outcome.fetch.ok:
            self._reject(outcome.fetch.reason, candidate.url)
            return
        if outcome.check is None or not outcome.check.ok or outcome.path is None:
            self._reject(outcome.check.reason if outcome.check else "not_an_image", candidate.url)
            return
        self._unbooked[outcome.number] = (candidate, outcome)

    def _book_in_order(self) -> None:
        """Book the judgements that are next in turn (one given later waits for those
        before it: a replacement is booked after the copy it replaces)."""
        while self._booked + 1 in self._unbooked:
            self._booked += 1
            self._book(*self._unbooked.pop(self._booked))

    def _book(self, candidate: Candidate, outcome: _Outcome) -> None:
        image = outcome.image
        assert image is not None
        if len(self.kept) >= self.wanted or outcome.reason:
            image.path.unlink(missing_ok=True)
            if outcome.reason:
                self._reject(outcome.reason, candidate.url)
            return
        if outcome.replaces is not None:
            self._replace(outcome.replaces, image)
            return
        self.kept.append(image)
        self.counts.kept += 1
        self.progress("kept", image=image)

    def _replace(self, old: KeptImage, image: KeptImage) -> None:
        """A better copy of a kept picture takes its place (and its number)."""
        self.kept[next(i for i, k in enumerate(self.kept) if k is old)] = image
        old.path.unlink(missing_ok=True)
        if id(old) in self.resumed_ids:
            self.resumed -= 1  # the new copy was found by this run
        else:
            self.counts.rejected["duplicate_near"] += 1
        self.progress("replaced", image=image, replaced=old)

    def _reject(self, reason: str, url: str) -> None:
        self.counts.rejected[reason] += 1
        self.progress("rejected", reason=reason, url=url)

    def _remove_leftovers(self) -> None:
        kept_paths = {image.path for image in self.kept}
        for leftover in self.workdir.glob("dl-*"):
            if leftover not in kept_paths:
                leftover.unlink(missing_ok=True)


def collect_images(candidates: Iterable[Candidate], **options: Any) -> CollectResult:
    """Download candidates until enough valid, unique images are kept: a Collector made
    with ``options`` (``wanted``, ``workdir``, ``rules``, ``progress``, ...), run once.

    ``already_kept`` are images a previous attempt validated: they count towards
    ``wanted``, seed the duplicate filter, and their URLs are not fetched again.
    """
    return Collector(**options).run(candidates)
