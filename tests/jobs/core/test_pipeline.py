"""The job pipeline in-process: search imitation -> image hosts -> zip -> job record."""

from __future__ import annotations

import hashlib
import threading
import zipfile

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from jobs.core import services
from jobs.core.run import job_run
from jobs.core.workdir import job_workdir
from jobs.models import JobStatus
from jobs.store import records
from jobs.store.events import job_events
from tests.factories import make_job
from tests.imagehosts import encoded
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(databases=["default", "cassandra"])]


@pytest.mark.imitation(total=200, junk=lambda i: i % 7 == 0)  # every 7th result an HTML page
def test_a_job_delivers_exactly_what_was_asked(cassandra_db, imitation):
    job = make_job(requested_count=60)
    assert job_run(job.id) == "done: 60"
    done = records.job_get(job.id)
    assert done.status == JobStatus.DONE
    assert done.downloaded_count == 60 and done.archive_bytes > 0
    assert done.rejected_count >= 1  # the html "images" among the results
    assert done.engine_used == "bing"
    with default_storage.open(done.archive_path, "rb") as fh, zipfile.ZipFile(fh) as zf:
        names = zf.namelist()
        # 60 images, manifest.csv and .jsonl, CREDITS.html, README.md (the dataset card)
        assert len(names) == 64 and names[0] == "red-fox_0001.jpg"
        assert names[-4:] == ["manifest.csv", "manifest.jsonl", "CREDITS.html", "README.md"]
        for name in names[:-4]:
            with zf.open(name) as member, Image.open(member) as img:
                img.load()
    kinds = [e.kind for e in job_events(job.id)]
    for expected in (
        "scheduled",
        "started",
        "engine_started",
        "page_loaded",
        "rejected",
        "archive_written",
        "done",
    ):
        assert expected in kinds
    assert len(records.job_images(job.id)) == 60
    assert not job_workdir(job.id, create=False).exists()


@pytest.mark.imitation(total=300, junk=lambda i: i % 5 != 0)  # four results in five are HTML pages
def test_a_job_keeps_drawing_while_most_results_are_junk(cassandra_db, imitation):
    job = make_job(requested_count=40)
    assert job_run(job.id) == "done: 40"
    done = records.job_get(job.id)
    assert done.downloaded_count == 40 and done.rejected_count >= 150


def test_page_extraction_job(cassandra_db, imitation, image_hosts):
    imitation.pages["/gallery"] = "".join(
        f'<img src="{image_hosts[0].url(f"/img/{2000 + n}.png?w=300&h=300")}">' for n in range(5)
    )
    job = make_job(requested_count=5, page_url=imitation.base + "/gallery")
    assert job_run(job.id) == "done: 5"


@pytest.mark.imitation(total=80, modes={"bing": "captcha"})
def test_fallback_when_the_first_engine_is_blocked(cassandra_db, imitation):
    job = make_job(requested_count=30)
    assert job_run(job.id) == "done: 30"
    events = job_events(job.id)
    failed = [e for e in events if e.kind == "engine_failed"]
    assert failed and failed[0].data["engine"] == "bing" and failed[0].data["reason"] == "captcha"
    assert "duckduckgo" in [e.data.get("engine") for e in events if e.kind == "engine_started"]
    assert imitation.count("/i.js") >= 1


@pytest.mark.imitation(total=20, junk=lambda i: True)  # every result an HTML page
def test_nothing_valid_fails_with_a_plain_reason(cassandra_db, imitation):
    job = make_job(requested_count=10)
    assert job_run(job.id) == "failed: nothing found"
    failed = records.job_get(job.id)
    assert failed.status == JobStatus.FAILED
    assert "none passed our checks" in failed.error and "html" in failed.error


@pytest.mark.image_hosts(latency=0.3)
@pytest.mark.imitation(total=300, batch_latency=0.3)
def test_cancel_during_the_run_stops_and_cleans_up(cassandra_db, imitation):
    job = make_job(requested_count=250)
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.setdefault("result", job_run(job.id)))
    runner.start()
    assert wait_for(lambda: (records.job_get(job.id).downloaded_count or 0) >= 5, 60, interval=0.2)
    assert services.job_cancel(records.job_get(job.id)) is True
    runner.join(60)
    assert outcome["result"] == "cancelled"
    cancelled = records.job_get(job.id)
    assert cancelled.status == JobStatus.CANCELLED
    assert cancelled.archive_path is None
    assert not job_workdir(job.id, create=False).exists()
    assert "cancel_done" in [e.kind for e in job_events(job.id)]


def test_a_better_copy_takes_the_kept_ones_place_in_the_record(cassandra_db, start_imitation, image_host):
    # One picture twice: the small copy comes among the first four results; the better
    # copy is held until those four are kept, and the last picture until it is judged,
    # so the better copy always arrives after the small one and before the job is full.
    pictures = {
        1: "/same/77.jpeg?w=320&h=240&q=80",
        4: "/hold/better/img/77.jpeg?w=640&h=480",
        5: "/hold/last/img/85.jpeg?w=400&h=300",
    }

    def image_url(index: int) -> str:
        return image_host.url(pictures.get(index, f"/img/{80 + index}.jpeg?w=400&h=300"))

    start_imitation(image_url=image_url, total=6)
    job = make_job(requested_count=5)  # five distinct pictures: every result is needed
    kept = job_workdir(job.id, create=False)  # <run>/kept/ holds the run's kept files
    better = hashlib.sha256(encoded(77, "jpeg", 640, 480)).hexdigest()[:16]
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.setdefault("result", job_run(job.id)))
    runner.start()
    try:
        assert wait_for(lambda: len(list(kept.glob("*/kept/*"))) == 4, 60, interval=0.05)
        image_host.release("better")
        assert wait_for(lambda: list(kept.glob(f"*/kept/*-{better}.*")), 30, interval=0.05)
    finally:
        image_host.release("better")
        image_host.release("last")
        runner.join(60)
    assert outcome["result"] == "done: 5"
    rows = records.job_images(job.id)
    assert len(rows) == 5 and len({row.position for row in rows}) == 5
    (copy,) = [row for row in rows if "/77.jpeg" in row.source_url]
    assert (copy.width, copy.source_url) == (640, image_host.url(pictures[4]))
    assert "duplicate_near" in {e.data.get("reason") for e in job_events(job.id) if e.kind == "rejected"}
    with default_storage.open(records.job_get(job.id).archive_path, "rb") as fh, zipfile.ZipFile(fh) as zf:
        sizes = sorted(Image.open(zf.open(name)).size for name in zf.namelist() if name.endswith(".jpg"))
    assert sizes == [(400, 300)] * 4 + [(640, 480)]
