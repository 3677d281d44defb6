"""Several threads racing the same operation, for tests of what must happen once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def race(fn: Callable[[], T], n: int, *, timeout: float = 60) -> list[T]:
    """Call ``fn`` in ``n`` threads at once; their results, in thread order."""
    return race_each([fn] * n, timeout=timeout)


def race_each(calls: Sequence[Callable[[], T]], *, timeout: float = 60) -> list[T]:
    """Call each of ``calls`` in a thread of its own, all released together from a
    barrier (none starts before every thread is ready); their results, in order.

    A thread's exception is raised here (the first, by order); a thread still running
    after ``timeout`` seconds fails the test instead of hanging it."""
    results: list[T | None] = [None] * len(calls)
    errors: list[BaseException | None] = [None] * len(calls)
    start = threading.Barrier(len(calls), timeout=timeout)

    def run(index: int) -> None:
        try:
            start.wait()
            results[index] = calls[index]()
        except BaseException as error:  # re-raised in the test's thread
            errors[index] = error

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    hung = sum(thread.is_alive() for thread in threads)
    if hung:
        raise AssertionError(f"{hung} of {len(threads)} racing threads still running after {timeout}s")
    for error in errors:
        if error is not None:
            raise error
    return results  # type: ignore[return-value]
