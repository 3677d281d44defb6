"""Polling for a condition in tests, with a deadline instead of fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 0.3) -> T:
    """Call ``predicate`` until it returns something truthy or ``timeout`` passes;
    returns its last value (falsy on timeout, for the caller's assert)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def holds_for(predicate: Callable[[], object], seconds: float, interval: float = 0.2) -> bool:
    """True if ``predicate`` stays truthy for ``seconds`` (watched, not slept through:
    False as soon as it is not)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(interval)
    return bool(predicate())


def wait_for_count(count: Callable[[], int], expected: int, timeout: float, settle: float = 3.0) -> int:
    """Wait until ``count()`` reaches ``expected``, then watch it for ``settle`` more
    seconds; returns the count: ``expected`` unless it fell short within ``timeout`` or
    went past it while settling (a mail sent twice). For "exactly n" of things that
    arrive on their own time, instead of one look after a fixed sleep."""
    if wait_for(lambda: count() >= expected, timeout, interval=0.2):
        holds_for(lambda: count() == expected, settle)
    return count()
