"""Every finished job is purged at its retention, whatever broke on the way: its purge
row is written before anything that can fail after the outcome (and made by the reaper
when the worker died first), the purge deletes every run's outputs by the job's prefix,
and each worker sweeps the work folders nobody will come back for."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.files.base import ContentFile

from jobs.core import services, storage
from jobs.core.reaper import jobs_reap
from jobs.core.workdir import job_workdir, run_workdir, workdirs_sweep
from jobs.models import JobActive, JobPurgeDue, JobStatus
from jobs.store import records
from tests.factories import NOW, expire_lease, finished_minutes_ago, make_done_job, make_job

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def purge_rows(job) -> list[JobPurgeDue]:
    return [row for row in JobPurgeDue.objects.all() if row.job_id == job.id]


def after_retention() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=settings.IMAGEDL_RETENTION_MINUTES + 1)


@pytest.mark.parametrize("outcome", [JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_job_whose_worker_died_after_its_outcome_is_given_its_purge_row_by_the_reaper(
    cassandra_db, outcome
):
    job = make_job(run_in=NOW)
    services.job_start_attempt(job)
    # The outcome landed, then the worker died: no purge row, the job still listed active.
    assert records.job_status_change(
        job, outcome, only_from=(JobStatus.RUNNING,), run_is=job.run_id, finished_at=dt.datetime.now(dt.UTC)
    )
    assert purge_rows(job) == []
    jobs_reap()
    assert len(purge_rows(job)) == 1
    assert not list(JobActive.objects.all())
    assert services.jobs_purge_due(now=after_retention()).jobs == 1
    assert records.job_get(job.id).email is None


def test_a_delivered_job_keeps_its_purge_row_when_the_broker_is_down_for_its_mail(cassandra_db, monkeypatch):
    job = make_job(run_in=NOW)
    services.job_start_attempt(job)
    path = storage.outputs().save(f"archives/{job.id.hex}.zip", ContentFile(b"zip"))

    def broker_down(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("jobs.lib.scheduling.queue_at", broker_down)
    with pytest.raises(redis.exceptions.ConnectionError):
        services.job_complete(job, archive_path=path, archive_bytes=3, kept=1)
    monkeypatch.undo()
    assert records.job_get(job.id).status == JobStatus.DONE
    assert len(purge_rows(job)) == 1
    jobs_reap()
    assert services.jobs_purge_due(now=after_retention()).jobs == 1
    assert not storage.exists(path)


def test_the_purge_deletes_every_runs_archive_and_previews_on_local_disk(cassandra_db):
    job = make_done_job(images=2)
    killed = storage.outputs().save(f"archives/{job.id.hex}-{uuid.uuid4().hex[:12]}.zip", ContentFile(b"old"))
    other = make_done_job(images=1)
    finished_minutes_ago(job, settings.IMAGEDL_RETENTION_MINUTES + 1)
    assert services.jobs_purge_due().jobs == 1
    media = Path(settings.MEDIA_ROOT)
    assert not storage.exists(killed) and not storage.exists(job.archive_path)
    assert list(media.glob(f"archives/{job.id.hex}*")) == []
    assert list(media.glob(f"previews/{job.id.hex}/*")) == []
    assert storage.exists(other.archive_path)


@pytest.mark.slow
def test_the_purge_deletes_every_runs_archive_and_previews_in_the_bucket(cassandra_db, s3_settings):
    job = make_done_job(images=2)
    storage.outputs().save(f"archives/{job.id.hex}-{uuid.uuid4().hex[:12]}.zip", ContentFile(b"old"))
    other = make_done_job(images=1)
    client = storage.outputs().connection.meta.client

    def keys(prefix: str) -> list[str]:
        listing = client.list_objects_v2(Bucket=settings.IMAGEDL_S3_BUCKET, Prefix=prefix)
        return [entry["Key"] for entry in listing.get("Contents", ())]

    assert len(keys(f"archives/{job.id.hex}")) == 2 and keys(f"previews/{job.id.hex}/")
    finished_minutes_ago(job, settings.IMAGEDL_RETENTION_MINUTES + 1)
    assert services.jobs_purge_due().jobs == 1
    assert keys(f"archives/{job.id.hex}") == [] and keys(f"previews/{job.id.hex}/") == []
    assert keys(f"archives/{other.id.hex}") == [other.archive_path]


def _age(folder: Path, minutes: float) -> None:
    """Make a folder and what is in it look last touched ``minutes`` ago."""
    then = time.time() - minutes * 60
    for path in [*folder.rglob("*"), folder]:
        os.utime(path, (then, then))


def test_each_worker_sweeps_work_folders_of_no_active_job_past_the_retention(cassandra_db):
    retention = settings.IMAGEDL_RETENTION_MINUTES
    finished = make_job(run_in=NOW)
    services.job_start_attempt(finished)
    killed_run = run_workdir(finished.id, uuid.uuid4())  # a killed run's folder, retried elsewhere
    (killed_run / "kept").mkdir()
    (killed_run / "kept" / "000001-abc.jpg").write_bytes(b"jpeg")
    expire_lease(finished)
    services.job_fail(records.job_get(finished.id), "gave up")
    running = make_job(run_in=NOW)
    services.job_start_attempt(running)
    busy = run_workdir(running.id, running.run_id)
    recent = run_workdir(uuid.uuid4(), uuid.uuid4())  # no job row, but young
    unknown = job_workdir(uuid.uuid4())  # no job row, old
    for folder in (job_workdir(finished.id), job_workdir(running.id), unknown):
        _age(folder, retention + 5)
    assert workdirs_sweep() == 2
    assert not job_workdir(finished.id, create=False).exists() and not unknown.exists()
    assert busy.exists() and recent.exists()
