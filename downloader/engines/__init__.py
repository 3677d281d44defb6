"""The search engines, their order, and falling back from one to the next."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from downloader.browsers import window_open
from downloader.choices import ALL
from downloader.choices import ENGINES as ENGINE_NAMES
from downloader.engines.base import (
    Candidate,
    Engine,
    EngineError,
    EngineOptions,
    EventCallback,
    SearchRules,
    no_events,
)
from downloader.engines.bing import BingEngine
from downloader.engines.duckduckgo import DuckDuckGoEngine
from downloader.engines.google import GoogleEngine
from downloader.engines.page import extract_page_images

ENGINES: dict[str, type[Engine]] = {
    engine.name: engine for engine in (BingEngine, DuckDuckGoEngine, GoogleEngine)
}
assert tuple(ENGINES) == ENGINE_NAMES, "downloader.choices lists the engines in this order"

__all__ = [
    "ENGINES",
    "EngineOptions",
    "engine_order",
    "extract_page_images",
    "get_engine",
    "search",
    "search_interleaved",
    "search_with_fallback",
]


def get_engine(name: str, options: EngineOptions | None = None) -> Engine:
    return ENGINES[name](options)


def engine_order(preferred: str = "auto", configured: tuple[str, ...] = ENGINE_NAMES) -> list[str]:
    """The ``configured`` order, with the user's chosen engine (if any) first."""
    order = list(configured)
    if preferred in ENGINES:
        order = [preferred] + [name for name in order if name != preferred]
    return order


def search(
    preferred: str,
    driver,
    query: str,
    wanted: int,
    rules: SearchRules,
    on_event: EventCallback | None = None,
    options: EngineOptions | None = None,
) -> Iterator[Candidate]:
    """Candidates for ``preferred``: ``all`` takes every engine in turn, any other choice
    one engine at a time in fallback order (``options.order``)."""
    options = options or EngineOptions()
    order = engine_order(preferred, options.order)
    if preferred == ALL:
        return search_interleaved(order, driver, query, wanted, rules, on_event, options)
    return search_with_fallback(order, driver, query, wanted, rules, on_event, options)


def _failure(name: str, exc: Exception) -> dict:
    """The ``engine_failed`` event's data: an EngineError's reason, else the error's type."""
    if isinstance(exc, EngineError):
        return {"engine": name, "reason": exc.reason, "detail": str(exc)}
    return {"engine": name, "reason": type(exc).__name__, "detail": str(exc)[:200]}


def search_with_fallback(
    order: list[str],
    driver,
    query: str,
    wanted: int,
    rules: SearchRules,
    on_event: EventCallback | None = None,
    options: EngineOptions | None = None,
) -> Iterator[Candidate]:
    """Candidates from the first engine; the next one takes over when it fails or runs
    dry before ``wanted`` were handed on. (The collector drops URLs it has seen.)"""
    emit = on_event or no_events
    handed_on = 0
    for position, name in enumerate(order):
        engine = get_engine(name, options)
        emit("engine_started", {"engine": name})
        before = handed_on
        try:
            for candidate in engine.search(
                driver, query, wanted=wanted - handed_on, rules=rules, on_event=on_event
            ):
                handed_on += 1
                yield candidate
                if handed_on >= wanted:
                    return
        except Exception as exc:  # one engine failing (a browser error too) must not end the search
            emit("engine_failed", _failure(name, exc))
            continue
        if position < len(order) - 1:
            emit("engine_exhausted", {"engine": name, "found": handed_on - before})


class _Tab:
    """The browser as one engine sees it: its own window, switched to only when the
    engine touches the browser (an engine handing on results it has read does not).
    ``shared[0]`` is the window the browser is on now."""

    def __init__(self, driver, handle: str, shared: list[str]) -> None:
        self._driver = driver
        self._handle = handle
        self._shared = shared

    def __getattr__(self, name: str) -> object:
        if self._shared[0] != self._handle:
            self._driver.switch_to.window(self._handle)
            self._shared[0] = self._handle
        return getattr(self._driver, name)


def _tabs(driver, order: list[str], opened: list[str]) -> Iterator[tuple[str, _Tab]]:
    """One window per engine: the first engine keeps the browser's window, each other
    gets a new one (its handle added to ``opened``)."""
    shared = [driver.current_window_handle]
    for position, name in enumerate(order):
        if position > 0:
            window_open(driver)  # in the search's own browser context
            opened.append(driver.current_window_handle)
            shared[0] = driver.current_window_handle
        yield name, _Tab(driver, shared[0], shared)


def search_interleaved(
    order: list[str],
    driver,
    query: str,
    wanted: int,
    rules: SearchRules,
    on_event: EventCallback | None = None,
    options: EngineOptions | None = None,
) -> Iterator[Candidate]:
    """Candidates from every engine in turn (one from each, round and round), each
    engine in its own browser window so its results page stays where it was. An engine
    that fails or runs dry leaves the round; the others go on. Repeats across engines
    are handed on: the collector is the one place they are dropped."""
    emit = on_event or no_events
    first = driver.current_window_handle
    streams: list[tuple[str, Iterator[Candidate]]] = []
    opened: list[str] = []
    try:
        for name, tab in _tabs(driver, order, opened):
            engine = get_engine(name, options)
            streams.append((name, engine.search(tab, query, wanted=wanted, rules=rules, on_event=on_event)))
            emit("engine_started", {"engine": name})
        handed_on = 0
        counts = dict.fromkeys(order, 0)
        while streams and handed_on < wanted:
            for entry in list(streams):
                name, stream = entry
                try:
                    candidate = next(stream)
                except StopIteration:
                    streams.remove(entry)
                    emit("engine_exhausted", {"engine": name, "found": counts[name], "together": True})
                    continue
                except Exception as exc:  # one engine failing (or its browser window) ends only its turn
                    streams.remove(entry)
                    emit("engine_failed", {**_failure(name, exc), "together": True})
                    continue
                counts[name] += 1
                handed_on += 1
                yield candidate
                if handed_on >= wanted:
                    return
    finally:
        for _, stream in streams:
            with contextlib.suppress(Exception):
                stream.close()
        with contextlib.suppress(Exception):  # the browser may be gone already
            for handle in opened:
                driver.switch_to.window(handle)
                driver.close()
            driver.switch_to.window(first)
