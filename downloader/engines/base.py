"""What every search engine shares: the candidate shape, rules, errors and waits."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from downloader.choices import ENGINES as ENGINE_NAMES
from downloader.choices import FILTER_VALUES, SAFE_SEARCH_DEFAULT, Filters
from downloader.collect import Candidate

__all__ = [
    "Candidate",
    "Engine",
    "EngineBlocked",
    "EngineError",
    "EngineOptions",
    "EventCallback",
    "FilterWords",
    "SearchRules",
    "Tally",
    "engine_filters",
    "no_events",
    "report_unapplied",
    "results_loop",
    "wait_in_page",
    "wait_until",
]

EventCallback = Callable[[str, dict], None]


@dataclass(frozen=True)
class EngineOptions:
    """How the engines are used: their order of fallback, where each one is (a base
    URL by engine name; missing: the engine's own site), and how long to wait for more
    results after a scroll (``downloader.config.engine_options_from_settings``)."""

    order: tuple[str, ...] = ENGINE_NAMES
    urls: Mapping[str, str] = field(default_factory=dict)
    scroll_wait: float = 6.0


@dataclass
class SearchRules:
    formats: set[str] = field(default_factory=set)
    min_width: int = 0
    min_height: int = 0
    safe_search: str = SAFE_SEARCH_DEFAULT  # one of downloader.choices.SAFE_SEARCH
    filters: Filters = field(default_factory=Filters)


# An engine's own words for the filters it has: kind -> value -> its URL parameter piece.
FilterWords = dict[str, dict[str, str]]


def engine_filters(filters: Filters, words: FilterWords) -> tuple[dict[str, str], list[str]]:
    """The engine's words for the filters it can apply (kind -> word), and what it cannot,
    in words users read: the kind ("freshness") when the engine has no such filter at
    all, else the kind and value ("license (public domain)")."""
    applied: dict[str, str] = {}
    unapplied: list[str] = []
    for kind, value in filters.chosen().items():
        word = words.get(kind, {}).get(value)
        if word:
            applied[kind] = word
        elif words.get(kind):
            unapplied.append(f"{kind} ({FILTER_VALUES[kind][value].lower()})")
        else:
            unapplied.append(kind)
    return applied, unapplied


def report_unapplied(emit: EventCallback, engine: str, unapplied: list[str]) -> None:
    """Tell the caller which filters ``engine`` could not apply (an event it records and
    shows: "Google could not apply: license (public domain)")."""
    if unapplied:
        emit("filters_unapplied", {"engine": engine, "filters": list(unapplied)})


class EngineError(RuntimeError):
    """The engine could not deliver results; ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class EngineBlocked(EngineError):
    """A CAPTCHA, consent wall or rate limit stands in the way."""


def is_http_url(url: str | None) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def is_thumbnail(url: str, markers: tuple[str, ...]) -> bool:
    """True when ``url`` contains one of an engine's thumbnail markers."""
    return any(marker in url for marker in markers)


def wait_until(condition: Callable[[], object], timeout: float, poll: float = 0.1) -> object:
    """Poll ``condition`` until it returns something truthy or ``timeout`` passes.

    Waits for events (more results appeared, a button showed up) are polls like this
    one, never fixed sleeps; an engine waiting on its own results page polls inside
    the page instead (``wait_in_page``).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(poll)


WAIT_IN_PAGE_JS = """
const done = arguments[arguments.length - 1];
const args = arguments[0], until = Date.now() + arguments[1], every = arguments[2];
const condition = function (args) { %s };
(function check() {
  let value = false;
  try { value = condition(args); } catch (e) { value = false; }
  if (value || Date.now() >= until) done(Boolean(value)); else setTimeout(check, every);
})();
"""
# Seconds one wait_in_page call may last: well under the browser's script time-out.
WAIT_IN_PAGE_CALL = 5.0


def wait_in_page(driver, condition: str, args: list, timeout: float, poll: float = 0.05) -> bool:
    """Poll ``condition`` (the body of a JavaScript function of ``args`` that returns
    true once the wait is over, and may act, as clicking a button) inside the page,
    every ``poll`` seconds, until it holds or ``timeout`` passes; True when it held.

    One WebDriver call per ``WAIT_IN_PAGE_CALL`` seconds instead of one (through
    chromedriver, the browser and the renderer) per poll. For search engines' pages
    only: a stranger's page could stop its timers and hold the wait until the
    script time-out (``downloader.engines.page`` polls from here)."""
    script = WAIT_IN_PAGE_JS % condition
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        call = min(left, WAIT_IN_PAGE_CALL)
        if driver.execute_async_script(script, args, int(call * 1000), int(poll * 1000)):
            return True
    return False


@dataclass
class Tally:
    """What an engine has met so far on its results pages."""

    read: int = 0  # results read off the page(s)
    unusable: int = 0  # results without a usable full-size URL (thumbnails, bad links)
    yielded: int = 0  # candidates handed on
    pages: int = 0  # times more results were loaded


def results_loop(
    *,
    engine: str,
    wanted: int,
    emit: EventCallback,
    read_batch: Callable[[int], list],
    to_candidate: Callable[[object], Candidate | None],
    load_more: Callable[[int], bool],
    check: Callable[[Tally], None] | None = None,
) -> Iterator[Candidate]:
    """The loop every results page shares: read what is new, hand on each usable
    candidate once, and load more until ``wanted`` are handed on or the results end.
    (The same URL shown twice is handed on twice; the collector drops repeats.)

    ``read_batch(n)`` returns the raw results after the first ``n`` already read;
    ``to_candidate`` turns one into a Candidate or None when it is unusable (its rank,
    the result's place in the engine's results, is set here);
    ``load_more(n)`` asks for more and returns True once there are more than ``n``;
    ``check`` may raise an EngineError when a batch shows a dead end (only thumbnails,
    no results at all).
    """
    tally = Tally()
    while tally.yielded < wanted:
        batch = read_batch(tally.read)
        first_rank = tally.read + 1
        tally.read += len(batch)
        for position, raw in enumerate(batch):
            candidate = to_candidate(raw)
            if candidate is None:
                tally.unusable += 1
                continue
            tally.yielded += 1
            yield dataclasses.replace(candidate, rank=first_rank + position)  # its place on the engine
            if tally.yielded >= wanted:
                return
        if check is not None:
            check(tally)
        if not load_more(tally.read):
            emit("results_end", {"engine": engine, "found": tally.yielded})
            return
        tally.pages += 1
        emit("scrolled", {"engine": engine, "pages": tally.pages, "found": tally.yielded})


def no_events(kind: str, data: dict) -> None:
    """The event callback used when the caller passes none."""


def cookie_set(driver, base_url: str, name: str, value: str) -> None:
    """Set a cookie of the engine's site in the browser before its first page: a
    preference the engine keeps for the whole session, the scroll requests its own
    scripts make included (they know only the page's URL and the cookies)."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCookie", {"name": name, "value": value, "url": base_url, "path": "/"})


class Engine:
    """One image search engine as a page object. Subclasses declare their locators
    together at the top and implement ``search``."""

    name = "engine"
    default_url = ""  # the engine's own site (EngineOptions.urls can point elsewhere: an imitation)

    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()

    def base_url(self) -> str:
        return self.options.urls.get(self.name) or self.default_url

    def scroll_wait(self) -> float:
        return self.options.scroll_wait

    def search(
        self, driver, query: str, *, wanted: int, rules: SearchRules, on_event: EventCallback | None = None
    ) -> Iterator[Candidate]:
        raise NotImplementedError
