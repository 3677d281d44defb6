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
    """A size as people read it: "812 bytes", "340 KB", "2.5 MB" (1 KB = 1024 bytes)."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            if unit == "bytes":
                return f"{value:.0f} {unit}"
            return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"
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


def duration_words(minutes: int) -> str:
    """A length of time as people say it: "30 minutes", "2 hours", "1 day"."""
    for unit, size in (("day", 1440), ("hour", 60)):
        if minutes >= size and minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{minutes} minute{'' if minutes == 1 else 's'}"
