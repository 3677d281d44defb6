"""A run that lost its job cannot harm the run that has it: the clean-up after a cancel
touches only its own outputs, a takeover is conditional on the very lease it saw run
out, and a lease counts as run out only IMAGEDL_CLOCK_SKEW_SECONDS after its time (a
machine whose clock is ahead does not steal live runs)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.base import ContentFile

from jobs.core import services, storage
from jobs.core.reaper import jobs_reap
from jobs.core.run import archive_path
from jobs.core.workdir import run_workdir
from jobs.models import JobStatus
from jobs.store import records
from tests.factories import NOW, expire_lease, make_job

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def started(job_id):
    job = records.job_get(job_id)
    assert services.job_start_attempt(job)
    return job


def outputs_of(job):
    """What a run of ``job`` (the run ``job.run_id``) has made: its work folder, an image
    row with its preview, and its archive."""
    folder = run_workdir(job.id, job.run_id)
    (folder / "kept").mkdir(exist_ok=True)
    (folder / "kept" / "000001-abc.jpg").write_bytes(b"jpeg")
    sha = job.run_id.hex * 2
    services.job_add_preview(job, 1, sha, b"preview")
    services.job_add_image(
        job, 1, file_name="000001-abc.jpg", sha256=sha, source_url="http://x/1.jpg", bytes=4
    )
    path = storage.outputs().save(archive_path(job, job.run_id), ContentFile(b"zip"))
    return folder, services.preview_path(job.id, sha), path


def test_the_clean_up_of_a_cancelled_run_leaves_the_next_runs_outputs(cassandra_db):
    job = make_job(run_in=NOW)
    old = started(job.id)
    old_folder, _, old_zip = outputs_of(old)
    services.job_cancel(records.job_get(job.id))
    services.job_retry(records.job_get(job.id))  # at once, before the old run noticed
    new = started(job.id)
    new_folder, new_preview, new_zip = outputs_of(new)
    services.job_note_cancelled_during_run(old)  # the old run notices and cleans up
    assert not old_folder.exists() and not storage.exists(old_zip)
    assert new_folder.exists() and storage.exists(new_zip) and storage.exists(new_preview)
    assert [image.file_name for image in records.job_images(job.id, run_id=new.run_id)] == ["000001-abc.jpg"]


def test_a_takeover_is_conditional_on_the_lease_it_saw(cassandra_db):
    job = make_job(run_in=NOW)
    holder = started(job.id)
    expire_lease(holder)
    taker = records.job_get(job.id)  # sees the lease run out...
    assert services.job_renew_lease(holder)  # ...which its run renews just then
    assert services.job_start_attempt(taker) == 0
    stored = records.job_get(job.id)
    assert stored.run_id == holder.run_id and stored.attempts == 1


def lease_ran_out(job, seconds_ago: float) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)
    assert records.job_write_if(job, {"lease_until": past}, run_is=job.run_id)


def test_a_lease_counts_as_run_out_only_after_the_clock_skew(cassandra_db, settings):
    settings.IMAGEDL_CLOCK_SKEW_SECONDS = 10
    job = make_job(run_in=NOW)
    holder = started(job.id)
    lease_ran_out(holder, 5)  # by this machine's clock; the holder's may be 5 s behind
    assert jobs_reap().runs == 0
    assert services.job_start_attempt(records.job_get(job.id)) == 0
    lease_ran_out(holder, 11)
    assert jobs_reap().runs == 1
    assert services.job_start_attempt(records.job_get(job.id)) == 2
    assert records.job_get(job.id).status == JobStatus.RUNNING
