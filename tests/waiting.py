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
