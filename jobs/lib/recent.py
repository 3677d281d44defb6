"""A small per-process memory of recent answers that may be slightly old.

Many pages poll one job's status every 1.5 s. Each answer is kept for ``max_age``
seconds; when it is older, one thread computes the next one while the other threads
keep answering with the previous one, so an expiry never makes every thread of a
process go to Cassandra at the same moment.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class RecentAnswers:
    def __init__(self, max_age: float, size: int = 10_000) -> None:
        self.max_age = max_age
        self.size = size
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()

    def get(self, key: str, compute: Callable[[], bytes | None]) -> bytes | None:
        """The answer for ``key``: remembered if fresh enough, else ``compute()``'s
        (None answers are not remembered)."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry[0] < self.max_age:
                return entry[1]
            if entry is not None and key in self._refreshing:
                return entry[1]  # another thread is fetching the next one
            self._refreshing.add(key)
        try:
            value = compute()
        finally:
            with self._lock:
                self._refreshing.discard(key)
        with self._lock:
            if value is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = (time.monotonic(), value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return value
