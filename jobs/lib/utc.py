"""One rule for datetimes between Python and Cassandra.

cqlengine hands back naive datetimes that mean UTC, and binds aware ones as given;
the rest of the app works with aware UTC values. These three helpers are the only
place that converts between the two.
"""

from __future__ import annotations

import datetime as dt


def aware_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A stored (naive UTC) or aware datetime as an aware UTC one."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def naive_utc(value: object) -> object:
    """A value as the driver binds it: aware datetimes become naive UTC; others pass."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def utc_day(value: dt.datetime) -> dt.date:
    """The UTC calendar day of a stored or aware datetime."""
    aware = aware_utc(value)
    assert aware is not None
    return aware.date()
