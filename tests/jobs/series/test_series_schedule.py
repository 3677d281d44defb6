"""A recurring series' next run: the same wall-clock time in its zone across the
daylight-saving changes (not a fixed 24 h in UTC), with the documented rules for a
local time that does not exist (moved on by the jump) or happens twice (the first)."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from jobs.series.recurrence import next_run_after

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def local(moment: dt.datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def daily_runs(start: dt.datetime, count: int, **series: object) -> list[dt.datetime]:
    runs, after = [], start
    for _ in range(count):
        after = next_run_after(after, every="day", **series)
        runs.append(after)
    return runs


@pytest.mark.parametrize(
    ("zone", "start", "wall"),
    [
        # Spring forward: Paris 29 March 2026, New York 8 March 2026.
        ("Europe/Paris", dt.datetime(2026, 3, 27, 12, tzinfo=dt.UTC), "09:00"),
        ("America/New_York", dt.datetime(2026, 3, 6, 18, tzinfo=dt.UTC), "09:00"),
        # Fall back: Paris 25 October 2026, New York 1 November 2026.
        ("Europe/Paris", dt.datetime(2026, 10, 23, 12, tzinfo=dt.UTC), "09:00"),
        ("America/New_York", dt.datetime(2026, 10, 30, 18, tzinfo=dt.UTC), "18:30"),
    ],
)
def test_a_daily_series_keeps_its_wall_clock_time_across_the_change(zone, start, wall):
    runs = daily_runs(start, 5, time_zone=zone, local_time=wall)
    assert [run.astimezone(ZoneInfo(zone)).strftime("%H:%M") for run in runs] == [wall] * 5
    # One day apart on the calendar, so one of the gaps is 23 h or 25 h in UTC.
    gaps = {(b - a) for a, b in itertools.pairwise(runs)}
    assert len(gaps) == 2 and dt.timedelta(hours=24) in gaps
    dates = [run.astimezone(ZoneInfo(zone)).date() for run in runs]
    assert all((b - a).days == 1 for a, b in itertools.pairwise(dates))


def test_paris_0900_is_0800_utc_in_winter_and_0700_in_summer():
    before = next_run_after(
        dt.datetime(2026, 3, 28, 9, tzinfo=dt.UTC), every="day", time_zone="Europe/Paris", local_time="09:00"
    )
    assert before == dt.datetime(2026, 3, 29, 7, tzinfo=dt.UTC)  # the change's own day: CEST
    winter = next_run_after(
        dt.datetime(2026, 3, 27, 9, tzinfo=dt.UTC), every="day", time_zone="Europe/Paris", local_time="09:00"
    )
    assert winter == dt.datetime(2026, 3, 28, 8, tzinfo=dt.UTC)


def test_a_weekly_series_keeps_its_weekday_and_time_across_the_change():
    # Every Sunday 10:00 in New York, from before the 8 March 2026 change to after it.
    runs, after = [], dt.datetime(2026, 2, 26, tzinfo=dt.UTC)
    for _ in range(4):
        after = next_run_after(
            after, every="week", time_zone="America/New_York", local_time="10:00", weekday=6
        )
        runs.append(after)
    assert [local(r, NEW_YORK) for r in runs] == [
        "2026-03-01 10:00 EST",
        "2026-03-08 10:00 EDT",
        "2026-03-15 10:00 EDT",
        "2026-03-22 10:00 EDT",
    ]
    assert runs[1] - runs[0] == dt.timedelta(days=7, hours=-1)


@pytest.mark.parametrize(
    ("zone", "day", "wall", "expected"),
    [
        # 02:30 does not exist on the spring-forward night: it runs at 03:30, as far
        # after the jump as it was into the gap.
        ("Europe/Paris", dt.date(2026, 3, 29), "02:30", "2026-03-29 03:30 CEST"),
        ("America/New_York", dt.date(2026, 3, 8), "02:30", "2026-03-08 03:30 EDT"),
    ],
)
def test_a_time_the_clocks_skip_runs_that_far_after_the_jump(zone, day, wall, expected):
    after = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(12), tzinfo=ZoneInfo(zone))
    runs = daily_runs(after, 2, time_zone=zone, local_time=wall)
    assert local(runs[0], ZoneInfo(zone)) == expected
    assert runs[1].astimezone(ZoneInfo(zone)).strftime("%H:%M") == wall  # and the next day as usual


@pytest.mark.parametrize(
    ("zone", "day", "wall", "expected_utc"),
    [
        # 02:30 happens twice in Paris on 25 October 2026 (CEST, then CET): the first.
        ("Europe/Paris", dt.date(2026, 10, 25), "02:30", dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)),
        # 01:30 happens twice in New York on 1 November 2026 (EDT, then EST): the first.
        ("America/New_York", dt.date(2026, 11, 1), "01:30", dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.UTC)),
    ],
)
def test_a_time_that_happens_twice_runs_once_at_its_first_occurrence(zone, day, wall, expected_utc):
    after = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(12), tzinfo=ZoneInfo(zone))
    first, second = daily_runs(after, 2, time_zone=zone, local_time=wall)
    assert first == expected_utc
    assert second.astimezone(ZoneInfo(zone)).date() == day + dt.timedelta(days=1)  # not again that night


def test_the_next_run_is_strictly_after_the_given_moment():
    at = dt.datetime(2026, 6, 1, 7, tzinfo=dt.UTC)  # 09:00 in Paris
    assert next_run_after(at, every="day", time_zone="Europe/Paris", local_time="09:00") == at + dt.timedelta(
        days=1
    )
    with pytest.raises(ValueError):
        next_run_after(at.replace(tzinfo=None), every="day", time_zone="UTC", local_time="09:00")
    with pytest.raises(ValueError):
        next_run_after(at, every="hour", time_zone="UTC", local_time="09:00")
