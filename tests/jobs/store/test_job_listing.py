"""Operators' newest-first job listing pages correctly, across UTC day boundaries."""

from __future__ import annotations

import datetime as dt

import pytest

from jobs.models import JobStatus
from jobs.store import records
from tests.factories import make_job_record

START = dt.datetime(2026, 3, 28, 21, 0, tzinfo=dt.UTC)


@pytest.fixture
def jobs_over_three_days(cassandra_db):
    """31 jobs created every 2 hours from 21:00 on day one, so they span 3+ UTC days."""
    created = []
    for n in range(31):
        job = make_job_record(
            created_at=START + dt.timedelta(hours=2 * n),
            email=f"user{n}@example.org",
            query=f"query {n}",
            status=JobStatus.DONE if n % 3 == 0 else JobStatus.SCHEDULED,
        )
        created.append(job)
    # Two jobs in the same millisecond: the cursor must not skip or repeat either.
    twin_time = START + dt.timedelta(hours=7)
    created += [
        make_job_record(created_at=twin_time, query="twin a"),
        make_job_record(created_at=twin_time, query="twin b"),
    ]
    return created


def _walk(limit, **filters):
    seen, cursor, pages = [], None, 0
    while True:
        page = records.jobs_list_newest_first(limit, cursor, **filters)
        pages += 1
        seen += page.jobs
        assert len(page.jobs) <= limit
        if page.next_cursor is None:
            return seen, pages
        cursor = records.Cursor.decode(page.next_cursor.encode())
        assert pages < 100


def test_pages_cover_every_job_once_newest_first(jobs_over_three_days):
    seen, pages = _walk(7)
    assert len(seen) == 33
    assert len({j.id for j in seen}) == 33
    assert pages == 5  # 7+7+7+7+5
    times = [j.created_at for j in seen]
    assert times == sorted(times, reverse=True)
    assert {j.created_at.date() for j in seen} == {
        dt.date(2026, 3, 28),
        dt.date(2026, 3, 29),
        dt.date(2026, 3, 30),
        dt.date(2026, 3, 31),
    }


def test_page_sizes_straddling_a_day_boundary(jobs_over_three_days):
    first = records.jobs_list_newest_first(3)
    assert first.jobs[0].query == "query 30"  # the newest
    assert [j.query for j in first.jobs] == ["query 30", "query 29", "query 28"]
    # 31 jobs two hours apart from 21:00: the newest day (Mar 31) holds 5 of them.
    second = records.jobs_list_newest_first(5, first.next_cursor)
    assert [j.query for j in second.jobs] == ["query 27", "query 26", "query 25", "query 24", "query 23"]
    assert second.jobs[-1].created_at.date() < first.jobs[0].created_at.date()


def test_status_filter_pages_across_days(jobs_over_three_days):
    seen, _ = _walk(4, status=JobStatus.DONE)
    assert [j.query for j in seen] == [f"query {n}" for n in range(30, -1, -3)]


def test_single_day_filter(jobs_over_three_days):
    page = records.jobs_list_newest_first(50, day=dt.date(2026, 3, 28))
    assert [j.query for j in page.jobs] == ["query 1", "query 0"]
    assert page.next_cursor is None


def test_garbage_cursor_decodes_to_none():
    assert records.Cursor.decode("abc") is None
    assert records.Cursor.decode("123_nothex") is None
