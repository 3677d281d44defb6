"""The queue tables by time bucket: ``job_active``, ``mail_pending``, ``job_purge_due``
and ``webhook_pending``.

Each row goes in the partition of the five minutes it falls due in (its ``bucket``,
e.g. ``2026-12-05T19:05``), never a bucket already past: a row due earlier goes in the
present one. A pass (the reaper's, the purge's) reads the buckets from its queue's
watermark (``queue_mark``) up to its own time, then moves the watermark to the oldest
bucket that still holds a row, keeping an hour behind the present for clocks a little
apart. So the deletions of a day's jobs spread over 288 partitions that no pass reads
again once they are empty, instead of piling up in one partition read every minute:
at 50,000 jobs a day a bucket holds about 170 jobs' rows and tombstones, well under
Cassandra's warning threshold of 1,000 tombstones a read (bench/bench_queues.py).

Rows written before the tables were bucketed sit in the partition ``all``, which every
pass still reads (it empties as they are handled).
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from jobs.lib.utc import aware_utc
from jobs.models import QueueMark

LEGACY_BUCKET = "all"
BUCKET_FORMAT = "%Y-%m-%dT%H:%M"
BUCKET = dt.timedelta(minutes=5)
MARK_MARGIN = dt.timedelta(hours=1)  # how far behind the present a watermark stays


def bucket_of(when: dt.datetime) -> str:
    """The bucket (partition) of a moment."""
    moment = aware_utc(when)
    return moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0).strftime(
        BUCKET_FORMAT
    )


def queue_bucket(due: dt.datetime | None = None) -> str:
    """Where a row due at ``due`` (None: now) is written: its bucket, or the present
    one when that one is past (a pass may have left it behind)."""
    now = timezone.now()
    return bucket_of(max(aware_utc(due), now) if due is not None else now)


def _present(now: dt.datetime) -> dt.datetime:
    """A pass may look ahead (``now`` in the future); its watermark never does."""
    return min(aware_utc(now), timezone.now())


def queue_buckets(queue: str, until: dt.datetime, *, now: dt.datetime) -> list[str]:
    """The partitions a pass of ``queue`` reads: the legacy one, then every bucket
    from the watermark through ``until``'s."""
    mark = QueueMark.objects.filter(queue=queue).first()
    start = _parse(mark.bucket if mark is not None else bucket_of(_present(now) - MARK_MARGIN))
    end = _parse(bucket_of(until))
    buckets = []
    while start <= end:
        buckets.append(bucket_of(start))
        start += BUCKET
    return [LEGACY_BUCKET, *buckets]


def queue_mark_advance(queue: str, oldest_left: str | None, *, until: dt.datetime, now: dt.datetime) -> None:
    """After a pass over the buckets through ``until``'s: the next pass starts at the
    oldest bucket where a row was left (at the latest ``until``'s, which may hold rows
    due after it), and never within ``MARK_MARGIN`` of the present."""
    candidates = [bucket_of(_present(now) - MARK_MARGIN), bucket_of(until)]
    if oldest_left is not None and oldest_left != LEGACY_BUCKET:
        candidates.append(oldest_left)
    QueueMark.create(queue=queue, bucket=min(candidates))


def _parse(bucket: str) -> dt.datetime:
    return dt.datetime.strptime(bucket, BUCKET_FORMAT).replace(tzinfo=dt.UTC)
