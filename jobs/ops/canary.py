"""The engines' canary: what ``manage.py check_engines`` found last, kept in the shared
cache for the metrics (``imagedl_engine_canary_ok``). Run the command from cron more
often than ``CANARY_KEEP_SECONDS``: after that its results are forgotten, and the
gauge disappears rather than claim an old success."""

from __future__ import annotations

import time

from django.core.cache import cache

from jobs.lib.metrics import ENGINES, label_of

CACHE_KEY = "imagedl:engine-canary"
CANARY_KEEP_SECONDS = 6 * 3600


def canary_store(results: dict[str, bool]) -> None:
    """Remember each checked engine's result (others keep theirs)."""
    stored = canary_read()
    now = time.time()
    for engine, ok in results.items():
        stored[label_of(engine, ENGINES)] = {"ok": bool(ok), "at": now}
    cache.set(CACHE_KEY, stored, CANARY_KEEP_SECONDS)


def canary_read() -> dict[str, dict]:
    """``{engine: {"ok": bool, "at": timestamp}}`` for the engines checked lately."""
    stored = cache.get(CACHE_KEY)
    return dict(stored) if isinstance(stored, dict) else {}
