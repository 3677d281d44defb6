"""Each link does one thing. A series' stop link (the mails' "stop" link and
List-Unsubscribe) stops and shows nothing else; its page link shows the page, cannot
stop, and expires with the series' data; the resubmit page pre-fills the request but
not the address; pages ask browsers to keep their URLs (tokens) to this site."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest

from jobs.lib import links
from jobs.store.series import series_get
from tests.factories import deliver_run as deliver
from tests.factories import make_done_job
from tests.factories import submit_series as submit

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def _path(url: str) -> str:
    return urlsplit(url).path


def test_a_stop_link_only_stops_and_a_page_link_cannot_stop(cassandra_db, client):
    job = deliver(submit())
    series = series_get(job.series_id)
    stop_token = _path(links.series_stop_url(series.id)).split("/")[2]
    page_token = _path(links.series_url(series.id, period_days=1)).split("/")[2]
    assert client.get(f"/series/{stop_token}/").status_code == 404  # a stop link opens no page
    stop_page = client.get(f"/series/{stop_token}/stop")
    # It asks whether to stop (naming the series, as its mails do), and opens nothing else.
    assert "Stop the daily “red fox” images?" in stop_page.content.decode()
    assert b"/download" not in stop_page.content and b"/jobs/" not in stop_page.content
    assert client.post(f"/series/{page_token}/stop").status_code == 404  # a page link stops nothing
    assert series_get(series.id).is_active
    page = client.get(f"/series/{page_token}/")
    assert page.status_code == 200 and b"red fox" in page.content


def test_a_series_page_link_expires_with_the_series_data(cassandra_db, client, settings):
    job = submit()
    series = series_get(job.series_id)
    token = _path(links.series_url(series.id, period_days=1)).split("/")[2]
    lifetime = dt.timedelta(days=1 + settings.IMAGEDL_PERSONAL_TTL_DAYS)  # a daily series
    assert links.series_token_read(
        token, "page", now=dt.datetime.now(dt.UTC) + lifetime - dt.timedelta(hours=1)
    )
    with pytest.raises(links.LinkError) as late:
        links.series_token_read(token, "page", now=dt.datetime.now(dt.UTC) + lifetime + dt.timedelta(hours=1))
    assert late.value.reason == "expired"
    old = links.series_token_make(
        series.id, "page", expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    )
    assert client.get(f"/series/{old}/").status_code == 410


def test_the_resubmit_page_does_not_prefill_the_address(cassandra_db, client):
    job = make_done_job(email="grace@example.org", query="snowy owl")
    page = client.get(_path(links.resubmit_url(job.id))).content.decode()
    assert "snowy owl" in page
    assert "grace@example.org" not in page
    email_input = re.search(r"<input[^>]*name=\"email\"[^>]*>", page).group(0)
    assert "value=" not in email_input


def test_pages_keep_their_urls_to_this_site(cassandra_db, client):
    job = make_done_job()
    response = client.get(_path(links.status_url(job.id)))
    assert response["Referrer-Policy"] in ("no-referrer", "same-origin")
