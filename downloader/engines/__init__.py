"""The search engines, their order, and falling back from one to the next."""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings

from downloader.engines.base import Candidate, Engine, EngineError, EventCallback, SearchRules
from downloader.engines.bing import BingEngine
from downloader.engines.duckduckgo import DuckDuckGoEngine
from downloader.engines.google import GoogleEngine
from downloader.engines.page import extract_page_images

ENGINES: dict[str, type[Engine]] = {
    "bing": BingEngine,
    "duckduckgo": DuckDuckGoEngine,
    "google": GoogleEngine,
}

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
    dry before ``wanted``. No URL is yielded twice."""
    emit = on_event or (lambda kind, data: None)
    seen: set[str] = set()
    for position, name in enumerate(order):
        engine = get_engine(name)
        emit("engine_started", {"engine": name})
        before = len(seen)
        try:
            for candidate in engine.search(driver, query, wanted=wanted, rules=rules, on_event=on_event):
                if candidate.url in seen:
                    continue
                seen.add(candidate.url)
                yield candidate
                if len(seen) >= wanted:
                    return
        except EngineError as exc:
            emit("engine_failed", {"engine": name, "reason": exc.reason, "detail": str(exc)})
            continue
        except Exception as exc:  # a browser error on one engine must not end the job
            emit("engine_failed", {"engine": name, "reason": type(exc).__name__, "detail": str(exc)[:200]})
            continue
        if position < len(order) - 1:
            emit("engine_exhausted", {"engine": name, "found": len(seen) - before})
