"""How job values read to people: sizes and times in the user's zone.

Used by the emails, the status page, the admin and the purge command.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Protocol

from jobs.lib.utc import aware_utc


class Zoned(Protocol):
    """Anything that carries the user's IANA time zone (a job, a series)."""

    time_zone: str | None


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


def in_job_zone(job: Zoned, value: dt.datetime | None) -> dt.datetime | None:
    """A stored (naive UTC) or aware datetime as wall-clock time in the user's zone."""
    return in_zone(job.time_zone, value)


def in_zone(time_zone: str | None, value: dt.datetime | None) -> dt.datetime | None:
    """A stored (naive UTC) or aware datetime as naive wall-clock time in ``time_zone``."""
    aware = aware_utc(value)
    if aware is None:
        return None
    try:
        zone = zoneinfo.ZoneInfo(time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    # Naive wall-clock time: Django's |date filter would turn an aware value back
    # into the server's zone.
    return aware.astimezone(zone).replace(tzinfo=None)
