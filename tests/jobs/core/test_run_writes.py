"""What a run writes while it downloads (jobs.core.runwrites): progress at most once a
second, kept images' rows in single-partition batches behind a fence on the run's id,
the rest with the outcome; a run that lost its job or died between flushes loses only
what waited, and the run that takes over fetches it again without duplicating a kept
image. Against the suite's Cassandra node, statements counted by the driver's request
listener (tests.statements)."""

from __future__ import annotations

import functools
import hashlib
import math
import threading
import time
import zipfile
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.files.base import ContentFile

from jobs.core import run, services, storage
from jobs.core.run import job_run
from jobs.core.runwrites import IMAGE_BATCH, PROGRESS_EVERY, RunWrites
from jobs.models import JobStatus
from jobs.store import records
from jobs.store.events import job_events
from tests.factories import NOW, expire_lease, make_job
from tests.statements import BATCH, LWT, WRITE, StatementCount
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])


def _row(position: int) -> dict[str, object]:
    content = f"image {position}".encode()
    return {
        "file_name": f"{position:06d}.jpg",
        "sha256": hashlib.sha256(content).hexdigest(),
        "source_url": f"http://images.example/{position}.jpg",
        "width": 300,
        "height": 200,
        "format": "jpeg",
        "bytes": len(content),
    }


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _claimed():
    job = make_job(run_in=NOW)
    assert services.job_start_attempt(job) == 1
    return job


def test_progress_is_coalesced_and_its_last_values_go_with_the_outcome(cassandra_db):
    job, clock = _claimed(), Clock()
    writes = RunWrites(job, lost=lambda: False, on_lost=lambda: None, clock=clock)
    with StatementCount() as count:
        for n in range(1, 101):  # a collector reports after every candidate
            writes.progress(found_count=n, rejected_count=n // 10)
    assert count.of(LWT, "job") == 1  # the first at once, the others wait their second
    assert records.job_get(job.id).found_count == 1
    clock.now += PROGRESS_EVERY
    with StatementCount() as count:
        writes.progress(found_count=101)
        writes.progress(found_count=150, engine_used="bing")
    assert count.of(LWT, "job") == 1
    stored = records.job_get(job.id)
    assert (stored.found_count, stored.rejected_count, stored.engine_used) == (101, 10, None)
    last = writes.finish()
    assert last == {"found_count": 150, "engine_used": "bing", "downloaded_count": 0}
    path = storage.outputs().save(f"archives/{job.id.hex}.zip", ContentFile(b"zip"))
    with StatementCount() as count:
        assert services.job_complete(job, archive_path=path, archive_bytes=3, kept=1, progress=last)
    assert count.of(LWT, "job") == 1  # the outcome carries them: no write of its own
    done = records.job_get(job.id)
    assert (done.status, done.found_count, done.engine_used, done.downloaded_count) == (
        JobStatus.DONE,
        150,
        "bing",
        1,
    )


def test_images_wait_for_a_flush_and_go_as_one_batch_behind_the_fence(cassandra_db):
    job, clock = _claimed(), Clock()
    writes = RunWrites(job, lost=lambda: False, on_lost=lambda: None, batch=5, clock=clock)
    writes.progress(found_count=1)  # the first flush, at once
    with StatementCount() as count:  # (the test's own reads are counted too)
        for position in range(1, 5):
            writes.image(position, _row(position))
        writes.image(2, {**_row(2), "width": 640})  # a better copy before the flush: one row
        assert count.total == 0
        assert records.job_images(job.id) == []
        writes.image(5, _row(5))  # five wait: a flush
    assert (count.of(LWT, "job"), count.of(BATCH, "job_run_image"), count.of(WRITE, "job_run_image")) == (
        1,
        1,
        0,
    )
    assert count.batched["job_run_image"] == 5
    rows = records.job_images(job.id)
    assert [row.position for row in rows] == [1, 2, 3, 4, 5] and rows[1].width == 640
    # The job row counts only the rows stored before the flush that wrote it.
    assert records.job_get(job.id).downloaded_count == 0
    clock.now += PROGRESS_EVERY
    writes.progress(found_count=9)
    assert records.job_get(job.id).downloaded_count == 5 == writes.stored


def test_a_run_that_lost_its_job_writes_none_of_its_pending_images(cassandra_db):
    first, clock, lost = _claimed(), Clock(), threading.Event()
    writes = RunWrites(first, lost=lost.is_set, on_lost=lost.set, clock=clock)
    writes.progress(found_count=1)
    for position in range(1, 4):
        writes.image(position, _row(position))  # waiting for the next flush
    expire_lease(first)
    second = records.job_get(first.id)
    assert services.job_start_attempt(second) == 2
    clock.now += PROGRESS_EVERY
    with StatementCount() as count:
        writes.image(4, _row(4))  # the flush's fence is refused
        assert lost.is_set()
        assert writes.finish() == {}
        writes.progress(found_count=7)
    assert (count.of(LWT, "job"), count.of(BATCH, "job_run_image"), count.of(WRITE, "job_run_image")) == (
        1,
        0,
        0,
    )
    assert records.job_images(first.id, run_id=first.run_id) == []
    assert records.job_get(first.id).found_count == 1  # the new run's row is left alone


def test_a_flush_refused_after_a_cancel_says_so_and_a_landed_one_stands_for_the_cancel_check(cassandra_db):
    job, clock, told = _claimed(), Clock(), []
    writes = RunWrites(job, lost=lambda: False, on_lost=lambda: told.append(job.status), clock=clock)
    writes.progress(found_count=1)
    assert writes.confirmed_at == clock.now and told == []
    # The cancel check reads nothing within a second of a flush that found the job running.
    watch = run.CancelWatch(job.id, confirmed=time.monotonic)
    with StatementCount() as count:
        assert watch() is False
    assert count.total == 0
    assert services.job_cancel(records.job_get(job.id)) is True
    clock.now += PROGRESS_EVERY
    with StatementCount() as count:
        writes.progress(found_count=2)  # refused: the job is no longer running
    assert count.of(LWT, "job") == 1 and told == [JobStatus.CANCELLED]
    assert writes.confirmed_at == clock.now - PROGRESS_EVERY
    assert records.job_get(job.id).found_count == 1
    # Without a recent flush the check reads the job, and sees the cancel.
    with StatementCount() as count:
        assert run.CancelWatch(job.id)() is True
    assert count.total == 1


def test_a_flush_renews_the_lease_once_it_is_a_third_old_and_the_keeper_then_sends_nothing(
    cassandra_db, settings
):
    job, clock = _claimed(), Clock()
    claimed_until = records.job_get(job.id).lease_until
    writes = RunWrites(job, lost=lambda: False, on_lost=lambda: None, lease_every=20, clock=clock)
    writes.progress(found_count=1)
    assert records.job_get(job.id).lease_until == claimed_until and writes.lease_renewed_at == clock.now
    clock.now += 20
    with StatementCount() as count:
        writes.progress(found_count=2)  # the lease is a third old: this flush renews it
    assert count.of(LWT, "job") == 1 and writes.lease_renewed_at == clock.now
    assert records.job_get(job.id).lease_until > claimed_until
    # A keeper whose run's flushes keep renewing the lease sends no renewal of its own;
    # one without them does (every third of a 3-second lease here).
    settings.IMAGEDL_LEASE_SECONDS = 3
    with StatementCount() as count:
        keeper = run.LeaseKeeper(job, renewed=time.monotonic)
        try:
            assert wait_for(lambda: keeper.wakes >= 2, timeout=10, interval=0.1)
        finally:
            keeper.stop()
    assert count.of(LWT, "job") == 0 and not keeper.lost.is_set()
    with StatementCount() as count:
        keeper = run.LeaseKeeper(job)
        try:
            assert wait_for(lambda: keeper.wakes >= 1 and count.of(LWT, "job") >= 1, timeout=10, interval=0.1)
        finally:
            keeper.stop()
    assert not keeper.lost.is_set()


@pytest.mark.browser
@pytest.mark.imitation(total=120, junk=lambda i: i % 10 == 0)
def test_a_fifty_image_job_sends_its_images_in_batches_and_bounded_progress(cassandra_db, imitation):
    job = make_job(requested_count=50)
    began = time.monotonic()
    with StatementCount() as count:
        assert job_run(job.id) == "done: 50"
    seconds = time.monotonic() - began
    assert count.of(WRITE, "job_run_image") == 0
    flushes = math.ceil(seconds / PROGRESS_EVERY) + 50 // IMAGE_BATCH + 1
    assert count.batched["job_run_image"] == 50
    assert count.of(BATCH, "job_run_image") <= flushes + 1  # (+1: the rest before the outcome)
    renewals = math.floor(seconds / (settings.IMAGEDL_LEASE_SECONDS / 3))
    assert count.of(LWT, "job") <= 2 + flushes + renewals  # the claim and the outcome
    done = records.job_get(job.id)
    assert (done.status, done.downloaded_count) == (JobStatus.DONE, 50)
    assert done.rejected_count >= 1 and done.found_count >= 50 + done.rejected_count
    rows = records.job_images(job.id)
    assert [row.position for row in rows] == list(range(1, 51))
    kinds = [event.kind for event in job_events(job.id)]
    assert (
        kinds.index("candidates_found") < kinds.index("rejected") < kinds.index("kept") < kinds.index("done")
    )


class Died(BaseException):
    """The run's worker is gone: nothing of the run runs after this (no except clause
    of the run catches it)."""


@pytest.mark.browser
@pytest.mark.imitation(total=80)
def test_a_run_that_died_between_flushes_loses_only_what_waited(
    cassandra_db, imitation, image_hosts, monkeypatch
):
    """Rows are flushed five at a time: the run dies at its 12th image, with ten stored
    and two waiting (their files in its folder). The next run adopts the ten, fetches
    the two again and delivers no image twice."""
    monkeypatch.setattr(run, "RunWrites", functools.partial(RunWrites, every=3600, batch=5))
    kept_urls: list[str] = []
    on_kept = run.JobRun.on_kept

    def dying(self, image):
        on_kept(self, image)
        kept_urls.append(image.source_url)
        if len(kept_urls) == 12:
            raise Died

    monkeypatch.setattr(run.JobRun, "on_kept", dying)
    job = make_job(requested_count=30)
    with pytest.raises(Died):
        job_run(job.id)
    dead = records.job_get(job.id)
    stored = records.job_images(job.id, run_id=dead.run_id)
    assert [row.source_url for row in stored] == kept_urls[:10]
    assert dead.downloaded_count <= 10
    monkeypatch.setattr(run.JobRun, "on_kept", on_kept)
    expire_lease(dead)
    assert job_run(job.id) == "done: 30"
    assert "Resuming with 10 images" in " ".join(e.message for e in job_events(job.id) if e.kind == "resumed")
    rows = records.job_images(job.id)
    assert [row.position for row in rows] == list(range(1, 31))
    assert len({row.sha256 for row in rows}) == 30 and len({row.source_url for row in rows}) == 30
    assert set(kept_urls) <= {row.source_url for row in rows}
    hits = {(f"{host.address}:{host.port}", path): n for host in image_hosts for path, n in host.hits.items()}

    def fetched(url: str) -> int:
        parts = urlsplit(url)
        return hits[(parts.netloc, parts.path)]

    assert [fetched(url) for url in kept_urls] == [1] * 10 + [2, 2]  # the adopted ones once
    with storage.outputs().open(records.job_get(job.id).archive_path, "rb") as fh, zipfile.ZipFile(fh) as zf:
        images = [zf.read(name) for name in zf.namelist() if name.endswith(".jpg")]
    assert len(images) == 30 and len({hashlib.sha256(data).digest() for data in images}) == 30
