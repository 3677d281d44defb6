"""The search engines, their order, and falling back from one to the next."""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings

from downloader.choices import ENGINES as ENGINE_NAMES
from downloader.engines.base import Candidate, Engine, EngineError, EventCallback, SearchRules, no_events
from downloader.engines.bing import BingEngine
from downloader.engines.duckduckgo import DuckDuckGoEngine
from downloader.engines.google import GoogleEngine
from downloader.engines.page import extract_page_images

ENGINES: dict[str, type[Engine]] = {
    engine.name: engine for engine in (BingEngine, DuckDuckGoEngine, GoogleEngine)
}
assert tuple(ENGINES) == ENGINE_NAMES, "downloader.choices lists the engines in this order"

__all__ = ["ENGINES", "engine_order", "extract_page_images", "get_engine", "search_with_fallback"]


def get_engine(name: str) -> Engine:
    return ENGINES[name]()


def engine_order(preferred: str = "auto") -> list[str]:
    """The configured order, with the user's chosen engine (if any) first."""
    order = list(settings.IMAGEDL_ENGINE_ORDER)
    if preferred in ENGINES:
        order = [preferred] + [name for name in order if name != preferred]
    return order


def search_with_fallback(
    order: list[str],
    driver,
    query: str,
    wanted: int,
    rules: SearchRules,
    on_event: EventCallback | None = None,
) -> Iterator[Candidate]:
    """Candidates from the first engine; the next one takes over when it fails or runs
    dry before ``wanted`` were handed on. (The collector drops URLs it has seen.)"""
    emit = on_event or no_events
    handed_on = 0
    for position, name in enumerate(order):
        engine = get_engine(name)
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
        except EngineError as exc:
            emit("engine_failed", {"engine": name, "reason": exc.reason, "detail": str(exc)})
            continue
        except Exception as exc:  # a browser error on one engine must not end the search
            emit("engine_failed", {"engine": name, "reason": type(exc).__name__, "detail": str(exc)[:200]})
            continue
        if position < len(order) - 1:
            emit("engine_exhausted", {"engine": name, "found": handed_on - before})
