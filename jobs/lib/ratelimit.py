"""Fixed-window submission limits per client address and per mailbox, in the shared cache.

Counters live in Django's default cache: ``jobs.lib.cache.FileCache`` (never culls a live
counter) on one machine, Redis when scaled out (atomic increments).
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.cache import cache, caches
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


def client_key(address: str) -> str:
    """The rate-limit key of a client address: the address for IPv4, its /64 for IPv6
    (one subscriber gets a whole /64 and can pick a fresh address for every request)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_address(request) -> str:
    """The client's address. Behind proxies (IMAGEDL_CLIENT_IP_HEADER), each one appends
    the address it saw to the forwarding header, so the client is the entry
    IMAGEDL_TRUSTED_PROXIES places from the right; anything further left was written
    by the client and proves nothing."""
    from django.conf import settings

    remote = request.META.get("REMOTE_ADDR", "")
    header = settings.IMAGEDL_CLIENT_IP_HEADER
    if not header or not request.META.get(header):
        return remote
    hops = [part.strip() for part in request.META[header].split(",") if part.strip()]
    proxies = settings.IMAGEDL_TRUSTED_PROXIES
    if len(hops) < proxies:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-proxies]))
    except ValueError:
        return remote


def allow(scope: str, key: str, rate: tuple[int, int]) -> bool:
    """Count one hit; False once the window's limit is passed."""
    limit, window = rate
    if not limit:
        return True
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # no raw emails in cache keys
    bucket = f"rl:{scope}:{digest}:{int(time.time() // window)}"
    return _count(bucket, window + 5) <= limit


def _count(bucket: str, timeout: int) -> int:
    """Add one to ``bucket`` and return the new count, exactly, across threads and
    processes. Redis and memcached increment atomically; the file cache reads and
    writes, so its increments are serialised with a lock file beside it."""
    from django.core.cache.backends.filebased import FileBasedCache

    backend = caches["default"]
    if isinstance(backend, FileBasedCache):
        with _file_lock(Path(backend._dir)):
            hits = int(cache.get(bucket) or 0) + 1
            cache.set(bucket, hits, timeout=timeout)
            return hits
    cache.add(bucket, 0, timeout=timeout)
    try:
        return cache.incr(bucket)
    except ValueError:  # expired between the two calls
        cache.set(bucket, 1, timeout=timeout)
        return 1


@contextmanager
def _file_lock(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "ratelimit.lock", "a") as handle:  # one open file per caller: threads exclude too
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# The configured limits, parsed once: at start-up (a bad value stops it with the
# setting's name) and again whenever a test changes one of the settings.
RATE_SETTINGS = {
    "ip": "IMAGEDL_SUBMIT_RATE_PER_IP",
    "email": "IMAGEDL_SUBMIT_RATE_PER_EMAIL",
    "api_key": "IMAGEDL_API_RATE_PER_KEY",
}
_rates: dict[str, tuple[int, int]] = {}


def load_rates(**_signal: object) -> None:
    from django.conf import settings

    _rates.update({scope: parse_rate(getattr(settings, name), name) for scope, name in RATE_SETTINGS.items()})


def reload_rates(*, setting: str, **_signal: object) -> None:
    """Django's ``setting_changed`` receiver."""
    if setting in RATE_SETTINGS.values():
        load_rates()


def configured_rate(scope: str) -> tuple[int, int]:
    """The parsed limit of ``scope`` ("ip", "email" or "api_key")."""
    if not _rates:
        load_rates()
    return _rates[scope]
