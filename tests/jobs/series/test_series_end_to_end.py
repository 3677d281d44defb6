"""A recurring series through a real worker, the search imitation, image hosts and
SMTP: confirmed through the link of its first mail (double opt-in), it runs twice ("run now" for the second run, not a day's wait), the second
delivery holds only images the first did not, its mail says how many are new, and
the mail's stop link (List-Unsubscribe, one-click POST) stops the series."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import zipfile
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from downloader.archive import is_image_entry
from jobs.models import JobStatus, SeriesStatus
from jobs.series.services import series_run_now, series_submit
from jobs.store import records
from jobs.store.series import run_job_id, series_get
from tests.mailserver import link_in, text_body, worker_mail_env
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.imitation(total=300),
]
GRACE = "grace@example.org"


def zip_hashes(client, url: str) -> set[str]:
    response = client.get(urlsplit(url).path)
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {hashlib.sha256(archive.read(n)).hexdigest() for n in archive.namelist() if is_image_entry(n)}


def ready_mails(mailserver) -> list:
    return [m for m in mailserver.messages_to(GRACE) if "new images are ready" in str(m["Subject"])]


def test_a_series_runs_twice_delivering_only_new_images_then_its_link_stops_it(
    client, start_worker, imitation, mailserver
):
    start_worker(imitation, **worker_mail_env(mailserver.port))
    first_job = series_submit(
        every="day",
        email=GRACE,
        query="red fox",
        requested_count=6,
        run_at=dt.datetime.now(dt.UTC),
        time_zone="America/New_York",
    )
    series_id = first_job.series_id
    scheduled = mailserver.wait_for(GRACE, "scheduled", timeout=60)
    assert "Confirm to start" in str(scheduled["Subject"])
    response = client.post(urlsplit(link_in(scheduled, r"Confirm these deliveries:")).path)
    assert response.status_code == 302 and series_get(series_id).status == SeriesStatus.ACTIVE

    first = mailserver.wait_for(GRACE, "new images are ready", timeout=120)
    assert "All 6 are new" in text_body(first)
    first_images = zip_hashes(client, link_in(first, r"Download them \(one click\):"))
    assert len(first_images) == 6

    # Delivered, so the series moved on: run 2 tomorrow, at the same New York time.
    series = series_get(series_id)
    assert series.runs_done == 1 and series.runs_scheduled == 2
    second_job = records.job_get(run_job_id(series_id, 2))
    assert second_job.status == JobStatus.SCHEDULED
    zone = ZoneInfo("America/New_York")
    planned = second_job.run_at.replace(tzinfo=dt.UTC).astimezone(zone)
    assert f"{planned:%H:%M}" == series.local_time and planned.date() > dt.datetime.now(zone).date()

    assert series_run_now(series) == "queued to run now"
    assert wait_for(lambda: len(ready_mails(mailserver)) == 2, timeout=150, interval=1)
    second = next(m for m in ready_mails(mailserver) if m is not first)
    second_images = zip_hashes(client, link_in(second, r"Download them \(one click\):"))
    assert len(second_images) == 6 and not (second_images & first_images)
    done = records.job_get(second_job.id)
    assert done.status == JobStatus.DONE and done.already_delivered >= 1
    body = text_body(second)
    assert f"All 6 are new: {done.already_delivered} images found again were left out" in body
    assert "Delivery 2 of your repeating search. Every day at " in body

    # The stop link: List-Unsubscribe names it; a one-click POST stops the series.
    stop_url = re.search(r"<([^<>\s]+)>", str(second["List-Unsubscribe"])).group(1)
    assert f"Stop these deliveries: {stop_url}" in body
    assert str(second["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert wait_for(lambda: records.job_get(run_job_id(series_id, 3)) is not None, timeout=10)
    response = client.post(urlsplit(stop_url).path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    series = series_get(series_id)
    assert series.status == SeriesStatus.STOPPED and series.stop_reason == "user"
    assert records.job_get(run_job_id(series_id, 3)).status == JobStatus.CANCELLED
    assert records.job_get(run_job_id(series_id, 4)) is None  # no next run
