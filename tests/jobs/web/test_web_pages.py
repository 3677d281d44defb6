"""The public pages through Django's test client: validation, submission, status,
download, cancel, resubmit, error pages and protections."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
import zoneinfo

import pytest
from django_q.models import OrmQ, Schedule

from jobs.core import services
from jobs.lib import links
from jobs.models import Job, JobStatus
from jobs.store import records
from jobs.web.forms import MESSAGES
from tests.factories import good_post, make_done_job, make_job, stored_archive
from tests.racing import race

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Every post from the test client counts against 127.0.0.1: each test starts afresh."""
    from django.core.cache import cache

    cache.clear()


def nothing_stored():
    return (
        not list(Job.objects.all().limit(5))
        and not Schedule.objects.filter(name__startswith="job-").exists()
        and not OrmQ.objects.exists()
    )


def test_home_renders_the_form_with_every_field(client, cassandra_db):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    for name in (
        "query",
        "page_url",
        "count",
        "email",
        "run_date",
        "run_time",
        "time_zone",
        "formats",
        "min_width",
        "min_height",
        "engine",
        "csrfmiddlewaretoken",
    ):
        assert f'name="{name}"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # every asset served by us, no CDN
    assert response["Content-Security-Policy"].startswith("default-src 'self'")
    assert response["X-Frame-Options"] == "DENY"


TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def test_the_blank_form_rendered_once_is_the_page_each_request_would_render(client, cassandra_db, rf):
    from django.test import Client

    from jobs.web import views
    from jobs.web.forms import START_NOW, JobForm

    first, second = client.get("/"), client.get("/")  # the second from the page rendered once
    tokens = [TOKEN.search(r.content.decode()).group(1) for r in (first, second)]
    assert tokens[0] != tokens[1]  # each copy gets its own masked token
    today = dt.datetime.now(dt.UTC).date()
    fresh = views._home_page(rf.get("/"), JobForm(initial={"run_date": today, "start": START_NOW}))
    assert TOKEN.sub("T", second.content.decode()) == TOKEN.sub("T", fresh.content.decode())
    assert f'value="{today.isoformat()}"' in second.content.decode()
    assert second["Content-Type"] == fresh["Content-Type"]
    # The token put in is one the CSRF check accepts, with the cookie set beside it.
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/")
    assert "csrftoken" in page.cookies
    posted = browser.post("/", good_post(csrfmiddlewaretoken=TOKEN.search(page.content.decode()).group(1)))
    assert posted.status_code == 302
    assert browser.post("/", good_post(csrfmiddlewaretoken="x" * 64)).status_code == 403


def test_the_blank_form_follows_a_changed_setting(client, cassandra_db, settings):
    settings.IMAGEDL_SERIES_MAX_RUNS = 7
    assert 'data-max-runs="7"' in client.get("/").content.decode()
    settings.IMAGEDL_SERIES_MAX_RUNS = 9
    assert 'data-max-runs="9"' in client.get("/").content.decode()


def test_a_shared_page_is_rendered_once_per_language_and_day(rf):
    from django.utils import translation

    from jobs.web.shared_render import CSRF_PLACEHOLDER, shared_html

    rendered: list[str] = []

    def render(extra: dict) -> str:
        rendered.append(translation.get_language())
        return f"{translation.get_language()} {extra['csrf_token']}"

    today = dt.datetime.now(dt.UTC).date()
    request = rf.get("/")
    english = shared_html(request, "test", today, render)
    with translation.override("fr"):
        french = shared_html(request, "test", today, render)
    again = shared_html(request, "test", today, render)
    tomorrow = shared_html(request, "test", today + dt.timedelta(days=1), render)
    assert rendered == ["en-us", "fr", "en-us"]  # once each: (today, en-us), (today, fr), (tomorrow, en-us)
    assert english.startswith("en-us ") and french.startswith("fr ") and tomorrow.startswith("en-us ")
    assert CSRF_PLACEHOLDER not in english + french + again + tomorrow
    assert english != again  # a fresh masked token each time


@pytest.mark.parametrize(
    "changes,field,message",
    [
        ({"query": ""}, "query", MESSAGES["query_required"]),
        ({"query": "", "source": "page"}, "page_url", MESSAGES["page_required"]),
        ({"query": "x" * 201}, "query", MESSAGES["query_long"]),
        ({"query": "fox\x00"}, "query", MESSAGES["query_chars"]),
        ({"query": "fox\u200b"}, "query", MESSAGES["query_chars"]),
        ({"count": ""}, "count", MESSAGES["count_required"]),
        ({"count": "0"}, "count", MESSAGES["count_range"]),
        ({"count": "501"}, "count", MESSAGES["count_range"]),
        ({"count": "ten"}, "count", MESSAGES["count_invalid"]),
        ({"email": ""}, "email", MESSAGES["email_required"]),
        ({"email": "not-an-email"}, "email", MESSAGES["email_invalid"]),
        ({"run_date": "2020-01-01"}, "run_time", MESSAGES["time_past"]),
        ({"start": "later", "run_date": ""}, "run_date", MESSAGES["date_required"]),
        ({"start": "later", "run_time": ""}, "run_time", MESSAGES["time_required"]),
        ({"start": "later", "run_date": "2026-02-30"}, "run_date", MESSAGES["date_invalid"]),
        (
            {"run_date": (dt.date.today() + dt.timedelta(days=60)).isoformat()},
            "run_date",
            "Choose a date within the next 30 days",
        ),
        ({"time_zone": "Mars/Olympus"}, "time_zone", MESSAGES["zone"]),
        ({"query": "", "page_url": "ftp://example.org/x"}, "page_url", MESSAGES["page_bad"]),
        ({"query": "", "page_url": "not a url"}, "page_url", MESSAGES["page_bad"]),
        ({"query": "", "page_url": "http://10.1.2.3/gallery"}, "page_url", MESSAGES["page_private"]),
        ({"query": "", "page_url": "http://169.254.169.254/latest"}, "page_url", MESSAGES["page_private"]),
        ({"query": "", "page_url": "http://127.0.0.1:8000/admin"}, "page_url", MESSAGES["page_private"]),
        ({"query": "", "page_url": "http://localhost/x"}, "page_url", MESSAGES["page_private"]),
        ({"page_url": "https://93.184.216.34/page"}, "page_url", MESSAGES["both"]),  # a literal: no DNS
        ({"formats": ["bmp"]}, "formats", MESSAGES["choice"]),
        ({"min_width": "-5"}, "min_width", MESSAGES["size_range"]),
        ({"repeat": "day", "repeat_until": "2020-01-01"}, "repeat_until", MESSAGES["until_early"]),
    ],
)
def test_each_bad_input_gets_its_message_and_stores_nothing(
    client, cassandra_db, settings, changes, field, message
):
    settings.IMAGEDL_ALLOW_PRIVATE_NETWORKS = False
    response = client.post("/", good_post(**changes))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert errors[field] == [message]  # one plain message per field
    html = response.content.decode()
    # The summary links to the field and the title says there is a problem.
    assert html.count('id="error-summary"') == 1 and "There is a problem" in html
    assert "<title>Error: " in html
    assert 'role="alert"' in html and html.count('role="alert"') == 1  # one announcement
    assert nothing_stored()


def test_a_time_the_clocks_skip_is_refused(client, cassandra_db, settings):
    settings.IMAGEDL_MAX_SCHEDULE_DAYS = 3650
    # New York skips 02:00-03:00 on the second Sunday of March (next year's: always ahead).
    march = dt.date(dt.date.today().year + 1, 3, 1)
    spring = march + dt.timedelta(days=(6 - march.weekday()) % 7 + 7)
    response = client.post(
        "/", good_post(run_date=spring.isoformat(), run_time="02:30", time_zone="America/New_York")
    )
    assert "does not exist" in response.context["form"].errors["run_time"][0]
    assert nothing_stored()


def test_submission_stores_schedules_and_redirects_to_the_submitted_page(client, cassandra_db):
    response = client.post("/", good_post(formats=["jpeg", "png"], min_width="800", min_height="600"))
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 200
    job = page.context["job"]
    stored = records.job_get(job.id)
    assert stored.query == "red fox" and stored.requested_count == 120 and stored.formats == {"jpeg", "png"}
    assert (stored.min_width, stored.min_height) == (800, 600)
    assert Schedule.objects.filter(name=f"job-{job.id}").exists()
    html = page.content.decode()
    assert "red fox" in html and "Europe/Paris" in html and "/jobs/" in html


def test_typed_text_is_escaped_everywhere(client, cassandra_db):
    evil = '<script>alert("x")</script>'
    refused = client.post("/", good_post(query=evil, email='"<b>"@example.org')).content.decode()
    assert "<b>" not in refused and "<script>alert" not in refused  # echoed back into the form, escaped
    response = client.post("/", good_post(query=evil, email="b@example.org"))
    submitted = client.get(response["Location"]).content.decode()
    token = re.search(r"/jobs/([^/\"]+)/", submitted).group(1)
    status = client.get(f"/jobs/{token}/").content.decode()
    for html in (submitted, status):
        assert "<script>alert" not in html and "<b>" not in html
        assert "&lt;script&gt;alert" in html
    resubmit = client.get(f"/jobs/{links.token_make(links.token_read(token, 'status'), 'resubmit')}/resubmit")
    assert "<script>alert" not in resubmit.content.decode()  # the value goes back into the form, escaped
    data = client.get(f"/jobs/{token}/status.json").json()
    assert evil not in json.dumps(data) and "example.org" not in json.dumps(data)  # no personal data in JSON


def test_status_page_json_thumbnails_and_download(client, cassandra_db):
    job = make_done_job(email="ada@example.org", query="Red Fox", images=2)
    data = stored_archive(job)
    token = links.token_make(job.id, "status")
    page = client.get(f"/jobs/{token}/")
    html = page.content.decode()
    assert "Ready to download" in html and "Download <span" in html
    status = client.get(f"/jobs/{token}/status.json").json()
    assert status["status"] == "done" and status["downloaded"] == 2 and status["percent"] == 100
    assert status["events"][0]["message"] == "We received your request"  # people's words, not the code's
    assert status["thumbs_total"] == 2 and len(status["thumbs"]) == 2
    # Each preview opens its image at full size through the download's signed, expiring link.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        first = archive.read(next(n for n in archive.namelist() if n.endswith(".jpg")))
    full = client.get(status["thumbs"][0]["full"])
    assert full.status_code == 200 and full["Content-Type"] == "image/jpeg" and full.content == first
    lapsed = links.token_make(job.id, "download", dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    assert client.get(f"/jobs/{lapsed}/image/1").status_code == 410
    assert client.get(f"/jobs/{token}/image/1").status_code == 404  # a status link opens no image
    thumb = client.get(f"/jobs/{token}/thumb/1.jpg")
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert client.get(f"/jobs/{token}/thumb/9.jpg").status_code == 404
    download = client.get(status["download_url"])
    assert download.status_code == 200
    assert 'filename="red-fox.zip"' in download["Content-Disposition"]
    assert b"".join(download.streaming_content) == data


def test_tampered_expired_and_wrong_links_get_clear_pages(client, cassandra_db):
    job = make_done_job()
    token = links.token_make(job.id, "download", dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    tampered = client.get(f"/jobs/{token[:-3]}abc/download")
    assert tampered.status_code == 404 and "This link is not valid" in tampered.content.decode()
    expired_token = links.token_make(job.id, "download", dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    expired = client.get(f"/jobs/{expired_token}/download")
    assert expired.status_code == 410 and "expired" in expired.content.decode()
    status_token = links.token_make(job.id, "status")
    assert client.get(f"/jobs/{status_token}/download").status_code == 404  # wrong purpose
    assert client.get(f"/jobs/{job.id}/").status_code == 404  # the bare id opens nothing


def test_cancel_needs_a_post_and_works(client, cassandra_db):
    response = client.post("/", good_post())
    job = client.get(response["Location"]).context["job"]
    token = links.token_make(job.id, "status")
    follow = client.get(f"/jobs/{token}/cancel")
    assert follow.status_code == 302 and records.job_get(job.id).status == JobStatus.SCHEDULED
    assert client.post(f"/jobs/{token}/cancel").status_code == 302
    assert records.job_get(job.id).status == JobStatus.CANCELLED
    assert not Schedule.objects.filter(name=f"job-{job.id}").exists()
    page = client.get(f"/jobs/{token}/").content.decode()
    assert "Cancelled" in page and "Run the same search again" in page


def test_resubmit_link_prefills_the_form(client, cassandra_db):
    job = make_done_job(email="ada@example.org", query="Red Fox")
    services.job_fail(job, "x")
    page = client.get(f"/jobs/{links.token_make(job.id, 'resubmit')}/resubmit")
    form = page.context["form"]
    assert form.initial["query"] == "Red Fox" and "email" not in form.initial  # (test_link_purposes.py)
    services.job_purge(records.job_get(job.id))
    later = client.get(f"/jobs/{links.token_make(job.id, 'resubmit')}/resubmit").context["form"]
    # Once purged, what is left of the request (no words, no address) fills the form.
    assert later.initial["query"] == "" and later.initial["count"] == job.requested_count


def test_rate_limit_per_email(client, cassandra_db, settings):
    settings.IMAGEDL_SUBMIT_RATE_PER_EMAIL = "2/h"
    addresses = ["busy@example.org", "Busy+again@Example.org", "busy+third@example.org"]
    responses = [client.post("/", good_post(email=address)) for address in addresses]
    assert [r.status_code for r in responses] == [302, 302, 429]  # case and +tags are one mailbox
    assert "Slow down" in responses[-1].content.decode()
    assert 0 < int(responses[-1]["Retry-After"]) <= 3600
    assert client.post("/", good_post(email="someone.else@example.org")).status_code == 302


def test_rate_limit_per_client_address_behind_a_proxy(client, cassandra_db, settings):
    settings.IMAGEDL_SUBMIT_RATE_PER_IP = "2/h"
    settings.IMAGEDL_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    settings.IMAGEDL_TRUSTED_PROXIES = 1
    # The proxy appends the address it saw; whatever the client wrote before it is
    # different each time and must not buy a fresh allowance.
    codes = [
        client.post(
            "/", good_post(email=f"user{n}@example.org"), HTTP_X_FORWARDED_FOR=f"10.0.0.{n}, 198.51.100.7"
        ).status_code
        for n in range(3)
    ]
    assert codes == [302, 302, 429]
    # Invalid posts count too: the address limit comes before the form's checks.
    assert client.post("/", good_post(email="nope"), HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 429
    other = client.post("/", good_post(email="x@example.org"), HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert other.status_code == 302
    # Fewer hops than proxies, or a hop that is no address: the connection's address
    # (127.0.0.1 here) is counted instead.
    settings.IMAGEDL_TRUSTED_PROXIES = 2
    short = client.post("/", good_post(email="y@example.org"), HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert short.status_code == 302
    settings.IMAGEDL_TRUSTED_PROXIES = 1
    junk = client.post("/", good_post(email="z@example.org"), HTTP_X_FORWARDED_FOR="198.51.100.7, junk")
    assert junk.status_code == 302
    third = client.post("/", good_post(email="w@example.org"), HTTP_X_FORWARDED_FOR="not-an-address")
    assert third.status_code == 429  # the third post from 127.0.0.1


def test_healthz_tells_outsiders_only_up_or_down(client, cassandra_db, settings):
    outside = client.get("/healthz", REMOTE_ADDR="203.0.113.5").json()
    assert set(outside) == {"ok", "components"}
    assert all(set(c) == {"ok"} for c in outside["components"].values()), outside
    settings.IMAGEDL_HEALTHZ_TOKEN = "s3cret"
    with_token = client.get("/healthz", REMOTE_ADDR="203.0.113.5", HTTP_X_HEALTHZ_TOKEN="s3cret").json()
    assert "ms" in with_token["components"]["database"]
    wrong = client.get("/healthz", REMOTE_ADDR="203.0.113.5", HTTP_X_HEALTHZ_TOKEN="wrong").json()
    assert "ms" not in wrong["components"]["database"]
    local = client.get("/healthz").json()  # the test client connects from 127.0.0.1
    assert local["components"]["database"]["vendor"] == "sqlite"


def test_resubmitting_proposes_now_in_the_jobs_own_zone(client, cassandra_db):
    job = make_job(run_in=dt.timedelta(days=1), time_zone="Pacific/Auckland")
    form = client.get(f"/jobs/{links.token_make(job.id, 'resubmit')}/resubmit").context["form"]
    auckland = {
        (dt.datetime.now(zoneinfo.ZoneInfo("Pacific/Auckland")) + dt.timedelta(minutes=m)).date()
        for m in (-1, 1)
    }
    assert form.initial["time_zone"] == "Pacific/Auckland" and form.initial["start"] == "now"
    assert form.initial["run_date"] in auckland  # today there, for "At a set time"


@pytest.mark.parametrize("start", ["now", "later"])
def test_a_set_time_up_to_15_minutes_past_counts_as_now(client, cassandra_db, start):
    paris = dt.datetime.now(zoneinfo.ZoneInfo("Europe/Paris"))
    for minutes_ago, accepted in ((14, True), (16, False)):
        when = paris - dt.timedelta(minutes=minutes_ago)
        post = good_post(
            start=start,
            run_date=f"{when:%Y-%m-%d}",
            run_time=f"{when:%H:%M}",
            email=f"a{minutes_ago}@example.org",
        )
        response = client.post("/", post)
        if start == "now" or accepted:  # "As soon as possible" ignores the hidden date and time
            assert response.status_code == 302, response.context["form"].errors
            job = client.get(response["Location"]).context["job"]
            assert (
                abs(
                    (
                        records.job_get(job.id).run_at - dt.datetime.now(dt.UTC).replace(tzinfo=None)
                    ).total_seconds()
                )
                < 60
            )
        else:
            assert response.context["form"].errors == {"run_time": [MESSAGES["time_past"]]}


def test_error_pages_in_the_site_look(client, cassandra_db):
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "Page not found" in missing.content.decode()
    assert "Traceback" not in missing.content.decode()
    bad_method = client.delete("/")
    assert bad_method.status_code == 405


def test_csrf_is_enforced(cassandra_db):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/", good_post())
    assert response.status_code == 403 and "Not allowed" in response.content.decode()
    assert nothing_stored()


def test_times_are_shown_in_the_users_zone(client, cassandra_db):
    run_at = dt.datetime.combine(dt.date.today() + dt.timedelta(days=10), dt.time(23, 15), dt.UTC)
    tokyo = run_at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert tokyo.date() == run_at.date() + dt.timedelta(days=1)  # 23:15 UTC is 08:15 the next day there
    job = make_job(run_at=run_at, time_zone="Asia/Tokyo")
    html = client.get(f"/jobs/{links.token_make(job.id, 'status')}/").content.decode()
    assert f"{tokyo:%A} {tokyo.day} {tokyo:%B %Y}, 08:15" in html


def test_every_form_control_has_a_label_and_choices_have_a_legend(client, cassandra_db):
    from html.parser import HTMLParser

    class Controls(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.ids: list[str] = []
            self.labelled: set[str] = set()
            self.legends: list[str] = []
            self._in_legend = False

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit"):
                self.ids.append(attrs.get("id", ""))
            if tag == "label" and attrs.get("for"):
                self.labelled.add(attrs["for"])
            self._in_legend = tag == "legend"

        def handle_data(self, data):
            if self._in_legend and data.strip():
                self.legends.append(data.strip())
                self._in_legend = False

    page = Controls()
    page.feed(client.get("/").content.decode())
    assert len(page.ids) >= 14 and all(page.ids)
    assert [i for i in page.ids if i not in page.labelled] == []  # each one named for screen readers
    assert "Formats" in page.legends
    assert 'for=""' not in client.get("/").content.decode()


def test_security_headers_on_every_page_and_hsts_over_https(client, cassandra_db, settings):
    response = client.get("/")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response  # plain http: no HSTS
    settings.SECURE_HSTS_SECONDS = 31_536_000
    from django.test import Client

    secure = Client().get("/", secure=True)
    assert secure["Strict-Transport-Security"].startswith("max-age=31536000")


def test_a_server_error_gets_the_site_page_without_a_traceback(client, cassandra_db, monkeypatch):
    job = make_job()

    def broken(job_id):
        raise RuntimeError("secret internals /srv/imagedl")

    monkeypatch.setattr(records, "job_get", broken)  # a fault inside the app
    client.raise_request_exception = False
    response = client.get(f"/jobs/{links.token_make(job.id, 'status')}/")
    body = response.content.decode()
    assert response.status_code == 500
    assert "imagedl" in body and "Something went wrong" in body
    assert "Traceback" not in body and "secret internals" not in body


def test_a_download_link_of_a_purged_job_says_gone(client, cassandra_db):
    job = make_job()
    services.job_purge(records.job_get(job.id))
    response = client.get(f"/jobs/{links.token_make(job.id, 'download')}/download")
    html = response.content.decode()
    assert response.status_code == 410 and "These images have been deleted" in html
    assert "for 30 minutes after they are ready" in html and 'id="again"' in html


def test_an_expired_download_link_states_the_window_and_runs_the_same_search_again(
    client, cassandra_db, settings
):
    settings.IMAGEDL_RETENTION_MINUTES = 120
    job = make_done_job(email="ada@example.org", query="Snowy owl", images=1)
    token = links.token_make(job.id, "download", dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    page = client.get(f"/jobs/{token}/download")
    html = page.content.decode()
    assert page.status_code == 410 and "This link has expired" in html
    assert "for 2 hours after they are ready" in html and "a short time" not in html
    again = re.search(r'id="again" href="([^"]+)"', html).group(1)
    form = client.get(again).context["form"]
    assert form.initial["query"] == "Snowy owl" and "email" not in form.initial
    assert "ada@example.org" not in client.get(again).content.decode()


def test_rate_limit_counts_are_exact_under_concurrent_posts(settings):
    from jobs.lib.ratelimit import allow

    def post_five() -> list[bool]:
        return [allow("ip", "198.51.100.99", (100, 3600)) for _ in range(5)]

    outcomes = [answer for answers in race(post_five, 30) for answer in answers]
    assert outcomes.count(True) == 100 and outcomes.count(False) == 50  # no increment lost


def test_the_status_page_says_why_it_found_more_than_it_kept(client, cassandra_db):
    from jobs.store.events import event_record

    job = make_done_job(images=3, found=9, rejected=2)
    event_record(job.id, "rejected", "2 rejected: too_small", reason="too_small", count=2)
    html = client.get(f"/jobs/{links.token_make(job.id, 'status')}/").content.decode()
    assert "2 smaller than you asked" in html  # rejected by reason, in plain words
    assert "4 not needed: we stopped once we had 3" in html  # 9 found = 3 kept + 2 left out + 4
    assert "too_small" not in html and "bytes" not in html
