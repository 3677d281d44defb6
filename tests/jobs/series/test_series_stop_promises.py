"""Promises of a series' stop that had no test: a series stops when its address asks
never to be emailed again, and after IMAGEDL_SERIES_MAX_EMPTY_RUNS empty runs in a row
(whatever that setting says)."""

from __future__ import annotations

import pytest

from jobs.mail.suppression import address_hash, suppression_add
from jobs.models import JobMail, SeriesStatus
from jobs.store import records
from jobs.store.series import run_job_id, series_get
from tests.factories import deliver_run, fail_run, submit_series

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def test_a_series_stops_when_its_address_unsubscribes(cassandra_db):
    job = submit_series(email="Lin@Example.org")
    suppression_add(address_hash=address_hash("lin@example.org"))  # another spelling, one mailbox
    deliver_run(job)
    series = series_get(job.series_id)
    assert series.status == SeriesStatus.STOPPED and series.stop_reason == "unsubscribed"
    assert records.job_get(run_job_id(series.id, 2)) is None
    assert not any(row.kind == "series_stopped" for row in JobMail.objects.filter(job_id=job.id))


@pytest.mark.parametrize("most", [1, 2])
def test_a_series_stops_after_the_configured_empty_runs_in_a_row(cassandra_db, settings, most):
    settings.IMAGEDL_SERIES_MAX_EMPTY_RUNS = most
    job = deliver_run(submit_series())
    series_id = job.series_id
    for run in range(2, 2 + most):
        assert series_get(series_id).is_active
        fail_run(records.job_get(run_job_id(series_id, run)))
    series = series_get(series_id)
    assert series.status == SeriesStatus.STOPPED and series.stop_reason == "nothing_new"
    assert series.empty_runs == most and records.job_get(run_job_id(series_id, 2 + most)) is None
