"""Fixed-window submission limits per client address and per email, in the shared cache."""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(text: str, name: str = "rate") -> tuple[int, int]:
    """``"20/h"`` -> (20, 3600); ``"0"`` or ``""`` -> (0, 0), meaning no limit."""
    text = text.strip()
    if text in ("", "0"):
        return 0, 0
    count, _, unit = text.partition("/")
    if not count.isdigit() or unit not in UNITS:
        raise ImproperlyConfigured(f"{name}={text!r}: expected a rate like 20/h (units s, m, h, d) or 0")
    return int(count), UNITS[unit]


def allow(scope: str, key: str, rate: tuple[int, int]) -> bool:
    """Count one hit; False once the window's limit is passed."""
    limit, window = rate
    if not limit:
        return True
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # no raw emails in cache keys
    bucket = f"rl:{scope}:{digest}:{int(time.time() // window)}"
    cache.add(bucket, 0, timeout=window + 5)
    try:
        hits = cache.incr(bucket)
    except ValueError:
        cache.set(bucket, 1, timeout=window + 5)
        hits = 1
    return hits <= limit
