"""When a recurring series runs next: the same wall-clock time in its zone, every day
or every week, across daylight-saving changes.

django-q2's DAILY and WEEKLY schedules add a fixed 24 h or 7 days in UTC, so a 09:00
run drifts to 08:00 or 10:00 local time when the clocks change. Here each next run is
computed from the zone's own calendar (zoneinfo): the next date on which the local
clock shows the series' time, turned into UTC.

Two local times need a rule:

- a time that does not exist that day (the clocks jump over it, e.g. 02:30 on the
  spring-forward night in Europe/Paris or America/New_York) runs as many minutes
  after the jump as it was into the gap: 02:30 becomes 03:30 (PEP 495's reading of
  ``fold=0``: the offset before the change);
- a time that happens twice (the clocks go back over it, e.g. 02:30 in Paris or 01:30
  in New York on the fall-back night) runs at its first occurrence (``fold=0``), once.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from jobs.models import SeriesEvery

__all__ = ["local_occurrence", "next_run_after", "parse_local_time"]


def parse_local_time(text: str) -> dt.time:
    """ "HH:MM" as a time of day (raises ValueError)."""
    hours, _, minutes = text.partition(":")
    return dt.time(int(hours), int(minutes))


def local_occurrence(day: dt.date, at: dt.time, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The moment (aware, UTC) the clock in ``zone`` shows ``at`` on ``day``: for a
    skipped time, that many minutes after the jump; for a repeated one, the first."""
    local = dt.datetime.combine(day, at).replace(tzinfo=zone, fold=0)
    return local.astimezone(dt.UTC)


def next_run_after(
    after: dt.datetime, *, every: str, time_zone: str, local_time: str, weekday: int | None = None
) -> dt.datetime:
    """The first run strictly after ``after`` (aware): the next day (or the next
    ``weekday``, 0 Monday, for a weekly series) whose local clock shows ``local_time``."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    if every not in SeriesEvery.DAYS:
        raise ValueError(f"unknown repeat {every!r}")
    zone = zoneinfo.ZoneInfo(time_zone)
    at = parse_local_time(local_time)
    day = after.astimezone(zone).date()
    # A week and a day of candidates always hold the answer.
    for offset in range(9):
        candidate_day = day + dt.timedelta(days=offset)
        if every == SeriesEvery.WEEK and weekday is not None and candidate_day.weekday() != weekday:
            continue
        moment = local_occurrence(candidate_day, at, zone)
        if moment > after:
            return moment
    raise AssertionError("no run within nine days")  # unreachable
