"""The job pipeline in-process: search imitation -> image hosts -> zip -> job record."""

from __future__ import annotations

import datetime as dt
import threading
import zipfile

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from jobs import records, services
from jobs.events import job_events
from jobs.models import JobStatus
from jobs.run import run_job
from jobs.workdir import job_workdir
from tests.imagehosts import ImageHost
from tests.imitations import SearchImitation
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(databases=["default", "cassandra"])]


@pytest.fixture(scope="module")
def image_hosts():
    hosts = [ImageHost(f"127.0.0.{n}", latency=0.02).start() for n in (41, 42, 43)]
    yield hosts
    for host in hosts:
        host.stop()


def make_imitation(hosts, bad_every: int = 0, good_every: int = 0, **kw) -> SearchImitation:
    def image_url(index: int) -> str:
        host = hosts[index % len(hosts)]
        if (bad_every and index % bad_every == 0) or (good_every and index % good_every):
            return host.url(f"/html.jpg?i={index}")
        return host.url(f"/img/{1000 + index}.jpeg?w=320&h=240")

    return SearchImitation("127.0.0.40", image_url=image_url, **kw).start()


@pytest.fixture
def search(image_hosts, settings):
    servers = []

    def start(**kw):
        server = make_imitation(image_hosts, **kw)
        servers.append(server)
        settings.IMAGEDL_BING_URL = settings.IMAGEDL_DUCKDUCKGO_URL = settings.IMAGEDL_GOOGLE_URL = (
            server.base
        )
        settings.IMAGEDL_SCROLL_WAIT = 2.0
        return server

    yield start
    for server in servers:
        server.stop()


def submit(count: int, **extra):
    fields = dict(
        email="ada@example.org",
        query="red fox",
        requested_count=count,
        run_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        time_zone="Europe/Paris",
    )
    fields.update(extra)
    return services.job_submit(**fields)


def test_a_job_delivers_exactly_what_was_asked(cassandra_db, search):
    search(total=200, bad_every=7)
    job = submit(60)
    assert run_job(job.id) == "done: 60"
    done = records.get_job(job.id)
    assert done.status == JobStatus.DONE
    assert done.downloaded_count == 60 and done.archive_bytes > 0
    assert done.rejected_count >= 1  # the html "images" among the results
    assert done.engine_used == "bing"
    with default_storage.open(done.archive_path, "rb") as fh, zipfile.ZipFile(fh) as zf:
        names = zf.namelist()
        assert len(names) == 61 and names[0] == "red-fox_0001.jpg" and names[-1] == "manifest.csv"
        for name in names[:-1]:
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


def test_a_job_keeps_drawing_while_most_results_are_junk(cassandra_db, search):
    search(total=300, good_every=5)  # four results in five are HTML pages
    job = submit(40)
    assert run_job(job.id) == "done: 40"
    done = records.get_job(job.id)
    assert done.downloaded_count == 40 and done.rejected_count >= 150


def test_page_extraction_job(cassandra_db, search, image_hosts):
    server = search(total=10)
    server.pages["/gallery"] = "".join(
        f'<img src="{image_hosts[0].url(f"/img/{2000 + n}.png?w=300&h=300")}">' for n in range(5)
    )
    job = submit(5, query="", page_url=server.base + "/gallery")
    assert run_job(job.id) == "done: 5"


def test_fallback_when_the_first_engine_is_blocked(cassandra_db, search):
    server = search(total=80, modes={"bing": "captcha"})
    job = submit(30)
    assert run_job(job.id) == "done: 30"
    events = job_events(job.id)
    failed = [e for e in events if e.kind == "engine_failed"]
    assert failed and failed[0].data["engine"] == "bing" and failed[0].data["reason"] == "captcha"
    assert "duckduckgo" in [e.data.get("engine") for e in events if e.kind == "engine_started"]
    assert server.count("/i.js") >= 1


def test_nothing_valid_fails_with_a_plain_reason(cassandra_db, search):
    search(total=20, bad_every=1)
    job = submit(10)
    assert run_job(job.id) == "failed: nothing found"
    failed = records.get_job(job.id)
    assert failed.status == JobStatus.FAILED
    assert "none passed our checks" in failed.error and "html" in failed.error


def test_cancel_during_the_run_stops_and_cleans_up(cassandra_db, search, image_hosts):
    search(total=300, batch_latency=0.3)
    for host in image_hosts:
        host._server.latency = 0.3
    job = submit(250)
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.setdefault("result", run_job(job.id)))
    runner.start()
    try:
        assert wait_for(lambda: (records.get_job(job.id).downloaded_count or 0) >= 5, 60, interval=0.2)
        assert services.job_cancel(records.get_job(job.id)) is True
        runner.join(60)
    finally:
        for host in image_hosts:
            host._server.latency = 0.02
    assert outcome["result"] == "cancelled"
    cancelled = records.get_job(job.id)
    assert cancelled.status == JobStatus.CANCELLED
    assert cancelled.archive_path is None
    assert not job_workdir(job.id, create=False).exists()
    assert "cancel_done" in [e.kind for e in job_events(job.id)]
