"""Search and download in one step: a Request in, valid unique images out.

``gather`` borrows this process's search browser (a fresh browser context of it,
``downloader.browsers``) or, to open a user's page, starts a browser of its own behind
the egress guard; it lets the search engines or the page extractor yield candidate URLs lazily, and feeds
them to the collector until enough valid, unique images are kept. Callers (the job run
in ``jobs.core.run``, ``manage.py fetch_images``) follow it through callbacks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from downloader.archive import file_stem
from downloader.browser import BrowserOptions, open_browser
from downloader.browsers import browser_spoil, search_browser
from downloader.choices import AUTO, ENGINE_LABELS, SAFE_SEARCH_DEFAULT, Filters
from downloader.collect import Candidate, Collector, CollectResult, Counts, ImageRules, KeptImage
from downloader.dedupe import SIGNATURE_METHOD, DuplicateFilter
from downloader.egress import EgressGuard
from downloader.engines import extract_page_images, search
from downloader.engines.base import EngineOptions, SearchRules
from downloader.engines.page import PageOptions
from downloader.http import DEFAULT_CONCURRENCY, DEFAULT_PER_HOST, Fetcher, FetchPolicy
from downloader.validation import ValidationLimits

EventSink = Callable[[str, str, dict], None]  # (kind, message, data)


@dataclass
class Request:
    """What to gather, independent of where the request came from."""

    wanted: int
    query: str = ""
    page_url: str = ""
    engine: str = AUTO
    formats: frozenset[str] = frozenset()
    min_width: int = 0
    min_height: int = 0
    output_format: str | None = None
    min_side: int | None = None  # the junk floor; None: ValidationLimits.min_side (--min-size sets it)
    safe_search: str = SAFE_SEARCH_DEFAULT
    filters: Filters = field(default_factory=Filters)  # engine filters (a page is not filtered)

    @property
    def subject(self) -> str:
        return self.query or self.page_url

    @property
    def name_stem(self) -> str:
        return file_stem(self.subject)

    @property
    def image_rules(self) -> ImageRules:
        return ImageRules(
            formats=set(self.formats),
            min_width=self.min_width,
            min_height=self.min_height,
            min_side=self.min_side,
            output_format=self.output_format,
            # What the pixels can check of the engine filters, for searches only.
            layout="" if self.page_url else self.filters.layout,
            animated=not self.page_url and self.filters.type == "animated",
        )

    @property
    def search_rules(self) -> SearchRules:
        return SearchRules(
            formats=set(self.formats),
            min_width=self.min_width,
            min_height=self.min_height,
            safe_search=self.safe_search,
            filters=self.filters,
        )


@dataclass(frozen=True)
class GatherOptions:
    """Everything ``gather`` is configured with, below the request itself
    (``downloader.config.gather_options_from_settings``: the IMAGEDL_* settings)."""

    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    concurrency: int = DEFAULT_CONCURRENCY  # downloads in flight
    per_host: int = DEFAULT_PER_HOST  # ... to one host
    validation: ValidationLimits = field(default_factory=ValidationLimits)
    browser: BrowserOptions = field(default_factory=BrowserOptions)
    engines: EngineOptions = field(default_factory=EngineOptions)

    @property
    def page(self) -> PageOptions:
        """A user's page is read under the download policy, scrolled like results."""
        return PageOptions(fetch=self.fetch, scroll_wait=self.engines.scroll_wait)


OVERFETCH_FACTOR = 10


def _candidates(
    request: Request, driver, on_event: EventSink, options: GatherOptions, extra: int = 0
) -> Iterator[Candidate]:
    """Candidate URLs, lazily, from the page extractor or the engines in fallback order."""

    def engine_event(kind: str, data: dict) -> None:
        on_event(kind, describe_engine_event(kind, data), data)

    # Candidates are drawn lazily, only while the collector needs more, so the engines
    # may offer many more than wanted (most results can be junk); the bound only ends
    # a search whose results never pass.
    # Images delivered before (``extra``) come back from the engines and are skipped.
    overfetch = request.wanted * OVERFETCH_FACTOR + 100 + extra
    if request.page_url:
        return extract_page_images(
            driver, request.page_url, wanted=overfetch, on_event=engine_event, options=options.page
        )
    return search(
        request.engine, driver, request.query, overfetch, request.search_rules, engine_event, options.engines
    )


def describe_engine_event(kind: str, data: dict) -> str:
    engine = data.get("engine", "")
    # With every engine at once (``all``) the others go on; otherwise the next one takes over.
    then = "the other engines go on" if data.get("together") else "trying the next engine"
    texts = {
        "engine_started": f"Searching with {engine}",
        "page_loaded": f"Loaded the {engine or 'page'} results",
        "scrolled": f"Scrolled for more results ({data.get('found', '?')} so far)",
        "see_more_clicked": "Clicked 'see more images'",
        "results_end": f"{engine or 'The page'} has no more results",
        "engine_failed": f"{engine} failed ({data.get('reason', 'error')}); {then}",
        "engine_exhausted": f"{engine} ran out of results; {then}",
        "filters_unapplied": unapplied_text(data),
    }
    return texts.get(kind, kind.replace("_", " "))


def delivered_filter(rows: Iterable[tuple[str, str, str]]) -> DuplicateFilter:
    """A filter that remembers delivered images, from ``(sha256, signature, method)``
    rows: every sha256 counts; a signature only under today's method
    (``SIGNATURE_METHOD``): another version's signatures are not comparable."""
    remembered = DuplicateFilter()
    for sha256, phash, method in rows:
        if method == SIGNATURE_METHOD and phash:
            remembered.check_and_add(sha256, phash)
        remembered.remember_sha(sha256)
    return remembered


def unapplied_text(data: dict) -> str:
    """``"Bing could not apply: freshness"`` from a ``filters_unapplied`` event's data."""
    engine = str(data.get("engine", ""))
    return f"{ENGINE_LABELS.get(engine, engine)} could not apply: {', '.join(data.get('filters') or ())}"


def gather(
    request: Request,
    workdir: Path,
    *,
    on_event: EventSink,
    on_progress: Callable[[Counts], None] | None = None,
    on_kept: Callable[[KeptImage], None] | None = None,
    on_replaced: Callable[[KeptImage, KeptImage], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    already_kept: list[KeptImage] | None = None,
    delivered: DuplicateFilter | None = None,
    options: GatherOptions | None = None,
) -> CollectResult:
    """Search and download until ``request.wanted`` valid, unique images are kept,
    configured by ``options`` (the library's defaults when None).

    ``on_progress(counts)`` follows every candidate found, kept or rejected;
    ``on_kept(image)`` sees each image as it is kept, ``on_replaced(image, replaced)``
    each better copy that takes a kept one's place; ``already_kept`` are images an
    earlier attempt validated (they count, and their URLs are not fetched again);
    ``delivered`` remembers images delivered before (``delivered_filter``): copies of
    them are rejected as ``already_delivered`` and more candidates are drawn instead.
    """
    already = list(already_kept or [])
    if len(already) >= request.wanted:
        return CollectResult(asked=request.wanted, found=0, kept=already, resumed=len(already))

    def progress(kind: str, **info: object) -> None:
        if kind == "kept" and on_kept is not None:
            on_kept(info["image"])  # type: ignore[arg-type]
        if kind == "replaced" and on_replaced is not None:
            on_replaced(info["image"], info["replaced"])  # type: ignore[arg-type]
        if on_progress is not None:
            on_progress(collector.counts)

    options = options or GatherOptions()
    with contextlib.ExitStack() as stack:  # the browser given back or quit (then its guard)
        fetcher = Fetcher(options.fetch, concurrency=options.concurrency, per_host=options.per_host)
        stack.callback(fetcher.close)
        collector = Collector(
            wanted=request.wanted,
            workdir=workdir,
            rules=request.image_rules,
            progress=progress,
            should_stop=should_stop,
            already_kept=already,
            delivered=delivered,
            fetcher=fetcher,
            limits=options.validation,
        )
        driver = stack.enter_context(_browser(request, options, stack))
        extra = len(delivered) if delivered is not None else 0
        source = _candidates(request, driver, _spoiling(on_event, driver), options, extra)
        try:
            return collector.run(source)
        finally:
            _source_close(source, driver)


def _spoiling(on_event: EventSink, driver) -> EventSink:
    """``on_event``, and an engine's failure (a time-out, a crashed tab, a browser
    error) keeps the browser from serving another search."""

    def noted(kind: str, message: str, data: dict) -> None:
        if kind == "engine_failed":
            browser_spoil(driver)
        on_event(kind, message, data)

    return noted


def _source_close(source: Iterator[Candidate], driver) -> None:
    """End the candidates' source (an engine's ``finally`` closes its windows) before
    the browser is given back; one still running (its thread stuck in a browser wait)
    spoils the browser."""
    try:
        close = getattr(source, "close", None)
        if close is not None:
            close()
    except Exception:  # ValueError: generator already executing
        browser_spoil(driver)


def _browser(request: Request, options: GatherOptions, stack: contextlib.ExitStack):
    """The request's browser: for a search, a fresh context of the process's search
    browser. A user's page decides what the browser fetches, so it gets a browser of its
    own (never kept) whose every request goes through an egress guard (entered on
    ``stack``: stopped after the browser)."""
    if not request.page_url:
        return search_browser(options.browser)
    egress = stack.enter_context(EgressGuard(options.fetch, loopback_only=options.browser.loopback_only))
    return open_browser(options.browser, egress=egress, for_pages=True)
