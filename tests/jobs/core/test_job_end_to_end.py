"""Whole jobs through a real worker: submit, run at its time, emails over real SMTP,
the download link, a worker killed mid-job, and a mail server that is down."""

from __future__ import annotations

import datetime as dt
import io
import signal
import zipfile
from functools import partial
from urllib.parse import urlsplit

import pytest
from PIL import Image

from downloader.archive import is_image_entry
from jobs.core import services
from jobs.models import JobStatus
from jobs.store import records
from jobs.store.events import job_events
from tests.factories import NOW, make_job
from tests.fixtures.servers import stop_worker
from tests.mailserver import MailServer, free_port, html_body, link_in, text_body, worker_mail_env
from tests.waiting import holds_for, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.imitation(total=300),
]
# Grace's jobs run as soon as they are submitted (tests change what they need).
grace_job = partial(
    make_job, email="grace@example.org", query="red fox", time_zone="America/New_York", run_in=NOW
)


def test_submit_run_email_and_download(client, start_worker, imitation, mailserver):
    start_worker(imitation, **worker_mail_env(mailserver.port))
    job = grace_job(requested_count=40)

    ready = mailserver.wait_for("grace@example.org", "are ready", timeout=120)
    # It started at once: its outcome is its one mail (no "scheduled", no "started").
    assert [str(m["Subject"]) for m in mailserver.messages_to("grace@example.org")] == [str(ready["Subject"])]
    assert "red fox" in text_body(ready) and "/jobs/" in html_body(ready)
    assert "40 images are ready" in str(ready["Subject"])
    body = text_body(ready)
    assert ("40 images" in body and "KB" in body) or "MB" in body
    download = link_in(ready, r"Download them \(one click\):")
    assert str(job.id) not in download  # a signed token, not the bare id

    response = client.get(urlsplit(download).path)
    assert response.status_code == 200
    assert 'filename="red-fox.zip"' in response["Content-Disposition"]
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        images = [n for n in zf.namelist() if is_image_entry(n)]
        assert len(images) == 40
        for name in images:
            with Image.open(io.BytesIO(zf.read(name))) as img:
                img.load()
    done = records.job_get(job.id)
    assert done.status == JobStatus.DONE and done.archive_bytes == len(data)
    # The worker records a mail as sent just after the server has it.
    assert wait_for(lambda: [e.kind for e in job_events(job.id)].count("email_sent") == 1, timeout=10)


def test_a_future_job_waits_for_its_time(start_worker, imitation, mailserver):
    start_worker(imitation, **worker_mail_env(mailserver.port))
    job = grace_job(requested_count=5, run_in=dt.timedelta(hours=2), time_zone="Asia/Tokyo")
    mailserver.wait_for("grace@example.org", "scheduled")
    assert holds_for(lambda: records.job_get(job.id).status == JobStatus.SCHEDULED, 3)
    assert services.job_cancel(records.job_get(job.id))


def test_a_killed_worker_does_not_lose_the_job(start_worker, imitation, image_hosts, mailserver):
    for host in image_hosts:
        host.latency = 0.8
    env = worker_mail_env(
        mailserver.port,
        IMAGEDL_PER_HOST_CONNECTIONS="1",
        # The dead run's lease (9 s) runs out soon: the job comes back through the
        # reaper, or the broker's copy of the task (45 s after the first worker took it),
        # whichever first (with the default minute's lease the copy found it still held).
        # The rest of the run (some 10 s, on a busy machine) has 40 s before its time-out.
        IMAGEDL_LEASE_SECONDS="9",
        IMAGEDL_JOB_TIMEOUT="40",
        IMAGEDL_TASK_RETRY="45",
    )
    first = start_worker(imitation, **env)
    job = grace_job(requested_count=30)
    assert wait_for(lambda: (records.job_get(job.id).downloaded_count or 0) >= 6, timeout=90)
    stop_worker(first, signal.SIGKILL)
    kept_before = {_url_key(image.source_url) for image in records.job_images(job.id)}
    assert 6 <= len(kept_before) < 30
    fetched_before = _fetched(image_hosts)
    start_worker(imitation, **env)  # resumes the run once the job is queued again
    assert wait_for(lambda: records.job_get(job.id).status == JobStatus.DONE, timeout=200, interval=1)
    done = records.job_get(job.id)
    assert done.downloaded_count == 30 and done.attempts == 2
    assert "resumed" in [e.kind for e in job_events(job.id)]
    # The resumed run adopts what the dead one had kept: it fetches again only images
    # the dead run fetched without keeping them (in flight, being checked, or refused).
    fetched_twice = {key for key, hits in _fetched(image_hosts).items() if hits > 1}
    assert kept_before <= set(fetched_before) and not fetched_twice & kept_before
    assert fetched_twice <= set(fetched_before) - kept_before


def _fetched(hosts) -> dict[tuple[str, str], int]:
    """How often each image was fetched, by (host:port, path)."""
    return {
        (f"{host.address}:{host.port}", path): hits
        for host in hosts
        for path, hits in list(host.hits.items())
        if path.startswith("/img/")
    }


def _url_key(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.netloc, parts.path


def test_mail_server_down_delays_the_email_but_not_the_job(start_worker, imitation):
    port = free_port()
    start_worker(imitation, **worker_mail_env(port, IMAGEDL_EMAIL_RETRY_SECONDS="1"))
    job = grace_job(requested_count=5)
    assert wait_for(lambda: records.job_get(job.id).status == JobStatus.DONE, timeout=90)
    assert wait_for(lambda: "email_delayed" in [e.kind for e in job_events(job.id)], timeout=30)
    mail = MailServer(port=port).start()
    try:
        ready = mail.wait_for("grace@example.org", "are ready", timeout=120)
        assert "5 images" in text_body(ready)
    finally:
        mail.stop()
    assert records.job_get(job.id).status == JobStatus.DONE
