"""What every search engine shares: the candidate shape, rules, errors and waits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings

from downloader.collect import Candidate

__all__ = [
    "Candidate",
    "Engine",
    "EngineBlocked",
    "EngineError",
    "EventCallback",
    "SearchRules",
    "wait_until",
]

EventCallback = Callable[[str, dict], None]


@dataclass
class SearchRules:
    formats: set[str] = field(default_factory=set)
    min_width: int = 0
    min_height: int = 0


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


def wait_until(condition: Callable[[], object], timeout: float, poll: float = 0.1) -> object:
    """Poll ``condition`` until it returns something truthy or ``timeout`` passes.

    Engines wait for events (more results appeared, a button showed up) this way,
    never with fixed sleeps.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(poll)


class Engine:
    """One image search engine as a page object. Subclasses declare their locators
    together at the top and implement ``search``."""

    name = "engine"

    def base_url(self) -> str:
        raise NotImplementedError

    def scroll_wait(self) -> float:
        return settings.IMAGEDL_SCROLL_WAIT

    def search(
        self, driver, query: str, *, wanted: int, rules: SearchRules, on_event: EventCallback | None = None
    ) -> Iterator[Candidate]:
        raise NotImplementedError
