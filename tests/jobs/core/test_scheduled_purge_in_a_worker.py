"""The purge runs by itself: a real worker's scheduler runs ``jobs.tasks.purge_due``
(the schedule ``migrate`` wrote), which deletes a job past its retention from the
bucket and from Cassandra."""

from __future__ import annotations

import pytest
from django.conf import settings

from jobs.core import storage
from jobs.store import records
from tests.factories import finished_minutes_ago, make_done_job
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def bucket_keys(prefix: str) -> list[str]:
    client = storage.outputs().connection.meta.client
    listing = client.list_objects_v2(Bucket=settings.IMAGEDL_S3_BUCKET, Prefix=prefix)
    return [entry["Key"] for entry in listing.get("Contents", ())]


@pytest.mark.slow
def test_a_worker_purges_a_job_past_retention_from_the_bucket_on_its_schedule(s3_settings, start_worker):
    job = make_done_job(images=2, email="purge@example.org")
    young = make_done_job(images=1, email="young@example.org")
    finished_minutes_ago(job, settings.IMAGEDL_RETENTION_MINUTES + 1)
    assert bucket_keys(f"archives/{job.id.hex}") and bucket_keys(f"previews/{job.id.hex}/")
    start_worker(**s3_settings)
    assert wait_for(lambda: records.job_get(job.id).purged_at is not None, timeout=150, interval=1)
    purged = records.job_get(job.id)
    assert purged.email is None and purged.query is None
    assert bucket_keys(f"archives/{job.id.hex}") == [] and bucket_keys(f"previews/{job.id.hex}/") == []
    assert bucket_keys(f"archives/{young.id.hex}") and records.job_get(young.id).email == "young@example.org"
