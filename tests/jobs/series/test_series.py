"""Recurring series through jobs.series and the web, against the real Cassandra node:
the series and its runs, the idempotent end step (one next job however often it
runs), the delivered-image history, auto-stop, the stop link (RFC 8058 one-click
too), the series page, the emails and the purge. (A series run by a real worker:
test_series_end_to_end.py.)"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django_q.models import Schedule

from downloader.choices import Filters
from downloader.dedupe import SIGNATURE_METHOD
from downloader.gather import delivered_filter
from jobs.core import services
from jobs.core.reaper import jobs_reap
from jobs.lib import links
from jobs.mail import outbox
from jobs.mail.emails import email_build
from jobs.models import JobActive, JobMail, JobStatus, Series, SeriesImage, SeriesStatus
from jobs.series.services import (
    series_purge_due,
    series_run_ended,
    series_run_now,
    series_stop,
)
from jobs.store import records
from jobs.store.events import job_events
from jobs.store.series import run_job_id, series_get, series_history, series_promise, stop_reason_text
from tests.factories import deliver_run, fail_run, submit_series
from tests.racing import race

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def schedules_named(job_id) -> int:
    return Schedule.objects.filter(name=f"job-{job_id}").count()


def test_a_repeating_submission_makes_a_series_and_its_first_run(cassandra_db):
    job = submit_series("week", run_in=dt.timedelta(days=2))
    series = series_get(job.series_id)
    assert series is not None and series.status == SeriesStatus.ACTIVE
    assert job.series_run == 1 and job.id == run_job_id(series.id, 1) == series.next_job_id
    local = records.job_get(job.id).run_at.replace(tzinfo=dt.UTC).astimezone(PARIS)
    assert series.local_time == f"{local:%H:%M}" and series.weekday == local.weekday()
    assert series.email == "lin@example.org" and series.query == "red fox"
    assert schedules_named(job.id) == 1


def test_every_run_of_a_series_asks_for_its_engine_filters(cassandra_db):
    chosen = Filters(license="cc", layout="wide", freshness="week")
    job = deliver_run(submit_series(filters=chosen))
    series = series_get(job.series_id)
    assert series.filters == chosen and records.job_get(job.id).filters == chosen
    second = records.job_get(run_job_id(series.id, 2))
    assert second.filters == chosen


def test_the_end_step_makes_one_next_run_however_often_it_runs(cassandra_db):
    job = deliver_run(submit_series())
    series = series_get(job.series_id)
    assert series.runs_scheduled == 2 and series.runs_done == 1 and series.delivered_total == 2
    second = records.job_get(run_job_id(series.id, 2))
    assert second is not None and second.series_run == 2 and second.status == JobStatus.SCHEDULED
    # The same wall-clock time in Paris, on a later day.
    first_local = aware(job.run_at).astimezone(PARIS)
    second_local = aware(second.run_at).astimezone(PARIS)
    assert f"{second_local:%H:%M}" == f"{first_local:%H:%M}" and second_local.date() > first_local.date()
    assert schedules_named(second.id) == 1

    # The step again, then eight copies at once (a task handed out twice, the reaper).
    series_run_ended(records.job_get(job.id))
    race(lambda: series_run_ended(records.job_get(job.id)), 8)
    series = series_get(series.id)
    assert series.runs_scheduled == 2 and series.runs_done == 1
    assert schedules_named(second.id) == 1
    assert records.job_get(run_job_id(series.id, 3)) is None
    assert len(series_history(series.id)) == 2


def test_end_steps_racing_from_the_start_make_one_next_run(cassandra_db):
    job = deliver_run(submit_series())
    series = series_get(job.series_id)
    second = records.job_get(series.next_job_id)
    # Back to the moment before the end step: the series on run 1, no second job.
    second.delete()
    JobActive.objects(bucket=second.active_bucket, job_id=second.id).delete()
    Schedule.objects.filter(name=f"job-{second.id}").delete()
    Series.objects(id=series.id).update(
        runs_scheduled=1, runs_done=0, delivered_total=0, next_job_id=job.id, next_run_at=job.run_at
    )
    race(lambda: series_run_ended(records.job_get(job.id)), 8)
    series = series_get(series.id)
    assert series.runs_scheduled == 2 and series.runs_done == 1 and series.delivered_total == 2
    assert records.job_get(run_job_id(series.id, 2)).status == JobStatus.SCHEDULED
    assert schedules_named(run_job_id(series.id, 2)) == 1
    assert records.job_get(run_job_id(series.id, 3)) is None
    events = [e.kind for e in job_events(job.id)]
    assert events.count("series_next") == 2  # the first end step, and one winner of the race


def test_a_next_run_lost_between_the_two_writes_is_made_by_the_reaper(cassandra_db):
    job = deliver_run(submit_series())
    series = series_get(job.series_id)
    second = records.job_get(series.next_job_id)
    # As if the worker died after moving the series on and before making the job:
    # no job row, no schedule, and the finished run still listed as active.
    second.delete()
    JobActive.objects(bucket=second.active_bucket, job_id=second.id).delete()
    Schedule.objects.filter(name=f"job-{second.id}").delete()
    JobActive.create(bucket="all", job_id=job.id)
    jobs_reap()
    remade = records.job_get(series.next_job_id)
    assert remade is not None and remade.status == JobStatus.SCHEDULED and schedules_named(remade.id) == 1


def test_a_failing_end_step_is_left_to_the_reaper(cassandra_db, monkeypatch):
    from jobs.core import hooks

    def broken(job) -> None:
        raise ConnectionError("Cassandra went away")

    monkeypatch.setitem(hooks._end_steps, "series", broken)
    job = deliver_run(submit_series())  # delivered all the same
    assert records.job_get(job.id).status == JobStatus.DONE
    assert series_get(job.series_id).runs_scheduled == 1
    assert jobs_reap().cleared == 0  # still broken: the job stays listed for the next pass
    monkeypatch.undo()
    assert jobs_reap().cleared == 1
    series = series_get(job.series_id)
    assert series.runs_scheduled == 2 and records.job_get(series.next_job_id).status == JobStatus.SCHEDULED


def test_history_is_kept_per_series_and_method_version(cassandra_db):
    job = deliver_run(submit_series())
    rows = list(SeriesImage.objects.filter(series_id=job.series_id))
    assert len(rows) == 2 and {row.method for row in rows} == {SIGNATURE_METHOD}
    other = deliver_run(submit_series(email="kai@example.org"), first=1)  # the same pictures, another series
    assert len(series_history(other.series_id)) == 2  # its own history, not shared
    from PIL import Image

    from downloader.dedupe import signature

    red = signature(Image.new("RGB", (64, 64), (200, 30, 30)))
    # A signature of another method's version is not compared; its sha256 still is.
    remembered = delivered_filter([("a" * 64, red, "old-method"), ("b" * 64, red, SIGNATURE_METHOD)])
    assert remembered.match("a" * 64, "") == "duplicate_exact"
    assert remembered.match("c" * 64, red) == "duplicate_near"
    only_old = delivered_filter([("a" * 64, red, "old-method")])
    assert only_old.match("c" * 64, red) is None


def test_three_runs_in_a_row_with_nothing_new_stop_the_series_with_one_mail(cassandra_db, settings):
    job = deliver_run(submit_series())
    series = series_get(job.series_id)
    for run in (2, 3, 4):
        last = fail_run(records.job_get(run_job_id(series.id, run)))
    series = series_get(series.id)
    assert series.status == SeriesStatus.STOPPED and series.stop_reason == "nothing_new"
    assert series.runs_done == 4 and series.empty_runs == 3
    assert records.job_get(run_job_id(series.id, 5)) is None
    assert series.purge_due_at is not None
    series_run_ended(last)  # the step again: still one mail
    rows = [row for row in JobMail.objects.filter(job_id=last.id) if row.kind == "series_stopped"]
    assert len(rows) == 1
    mail.outbox.clear()
    assert outbox.email_send(str(last.id), "series_stopped", 1, 1) == "sent"
    assert outbox.email_send(str(last.id), "series_stopped", 1, 1) == "skipped: sent"
    assert len(mail.outbox) == 1
    assert "have stopped" in mail.outbox[0].subject
    assert "3 runs in a row found nothing new" in mail.outbox[0].body


def test_a_delivery_resets_the_count_of_empty_runs(cassandra_db):
    job = deliver_run(submit_series())
    series = series_get(job.series_id)
    fail_run(records.job_get(run_job_id(series.id, 2)))
    fail_run(records.job_get(run_job_id(series.id, 3)))
    deliver_run(records.job_get(run_job_id(series.id, 4)), first=10)
    fail_run(records.job_get(run_job_id(series.id, 5)))
    series = series_get(series.id)
    assert series.is_active and series.empty_runs == 1 and series.runs_done == 5


def test_a_series_stops_after_its_most_runs(cassandra_db, settings):
    settings.IMAGEDL_SERIES_MAX_RUNS = 2
    job = deliver_run(submit_series())
    second = deliver_run(records.job_get(run_job_id(job.series_id, 2)), first=10)
    series = series_get(job.series_id)
    assert series.status == SeriesStatus.STOPPED and series.stop_reason == "max_runs"
    assert records.job_get(run_job_id(series.id, 3)) is None
    assert any(row.kind == "series_stopped" for row in JobMail.objects.filter(job_id=second.id))


def test_the_stop_link_stops_the_series_and_cancels_its_next_run(cassandra_db, client):
    job = deliver_run(submit_series())
    series = series_get(job.series_id)
    pending = series.next_job_id
    stop = urlsplit(links.series_stop_url(series.id)).path
    page = client.get(stop)  # a mail scanner following the link stops nothing
    assert page.status_code == 200 and series_get(series.id).is_active
    html = page.content.decode()
    # It asks, naming what stops; one button, no links to the runs or their images.
    assert "Stop the daily “red fox” images?" in html and html.count("<button") == 1
    assert "Every day at " in html and "until you stop it, at most 52 times" in html
    assert "/download" not in html and "/jobs/" not in html
    response = client.post(stop, {"List-Unsubscribe": "One-Click"})  # RFC 8058 one-click
    assert response.status_code == 200 and b"has stopped" in response.content
    series = series_get(series.id)
    assert series.status == SeriesStatus.STOPPED and series.stop_reason == "user"
    assert records.job_get(pending).status == JobStatus.CANCELLED
    assert schedules_named(pending) == 0
    assert records.job_get(run_job_id(series.id, 3)) is None  # the cancel made no next run
    assert not series_stop(series)  # stopped already
    assert not any(row.kind == "series_stopped" for row in JobMail.objects.filter(job_id=job.id))
    status = client.get(urlsplit(links.series_url(series.id, period_days=1)).path)
    assert (
        status.status_code == 200 and b"has stopped" in status.content and b"you stopped it" in status.content
    )


def test_the_series_page_shows_the_next_run_in_the_users_zone_and_past_deliveries(cassandra_db, client):
    job = deliver_run(submit_series())
    series = series_get(job.series_id)
    response = client.get(urlsplit(links.series_url(series.id, period_days=1)).path)
    assert response.status_code == 200
    body = response.content.decode()
    next_local = aware(series.next_run_at).astimezone(PARIS)
    assert f"{next_local:%H:%M}" in body and "Europe/Paris" in body
    assert "Run 1" in body and "2 new images" in body and "/download" in body and 'id="stop"' in body
    assert client.get("/series/not-a-token/").status_code == 404
    forged = links.token_make(job.id, "status")  # a job's token opens no series
    assert client.get(f"/series/{forged}/").status_code == 404


def test_series_mails_carry_the_stop_link_and_count_the_new_images(cassandra_db):
    job = deliver_run(submit_series())
    records.job_update(job, already_delivered=7)
    message = email_build(records.job_get(job.id), "ready")
    # The series' stop link (its token is signed with a timestamp: read back, not remade).
    stop_url, token = re.fullmatch(
        r"<(http\S+/series/([^/]+)/stop)>", message.extra_headers["List-Unsubscribe"]
    ).groups()
    assert (
        stop_url.startswith(links.absolute("/")) and links.series_token_read(token, "stop") == job.series_id
    )
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "new images are ready" in message.subject
    assert "All 2 are new: 7 images found again were left out" in message.body
    assert f"Stop these deliveries: {stop_url}" in message.body
    assert "/unsubscribe/" in message.body  # "never email me again" stays
    html = message.alternatives[0][0]
    assert stop_url in html and "/unsubscribe/" in html
    # A one-off job's mail is as before.
    from tests.factories import make_done_job

    single = email_build(make_done_job(), "ready")
    assert "/unsubscribe/" in single.extra_headers["List-Unsubscribe"] and "Stop these" not in single.body


def test_run_now_moves_the_pending_run_to_now(cassandra_db):
    job = deliver_run(submit_series())
    series = series_get(job.series_id)
    assert series_run_now(series) == "queued to run now"
    pending = records.job_get(series.next_job_id)
    assert aware(pending.run_at) <= dt.datetime.now(dt.UTC)
    deliver_run(pending, first=10)
    # The run after it: the next local occurrence after now, not after the time it replaced.
    series = series_get(series.id)
    assert aware(series.next_run_at) - dt.datetime.now(dt.UTC) <= dt.timedelta(days=1)
    series_stop(series)
    assert series_run_now(series_get(series.id)) == "not run: the series has stopped"


def test_a_stopped_series_is_purged_after_the_retention(cassandra_db, settings):
    job = deliver_run(submit_series())
    series = series_get(job.series_id)
    series_stop(series)
    assert series_purge_due(dt.datetime.now(dt.UTC)) == 0  # not yet
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=settings.IMAGEDL_RETENTION_MINUTES + 1)
    summary = services.jobs_purge_due(now=later)
    assert summary.series == 1
    purged = series_get(series.id)
    assert purged.purged_at is not None and purged.email is None and purged.query is None
    assert series_history(series.id) == []


def aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def test_the_form_offers_repeat_and_a_weekly_post_makes_a_series(cassandra_db, client):
    from django.core.cache import cache

    from tests.factories import good_post

    cache.clear()
    home = client.get("/").content.decode()
    for value in ("never", "day", "week"):
        assert f'name="repeat" value="{value}"' in home
    assert re.search(r'name="repeat" value="never"[^>]*checked', home)  # the default
    response = client.post("/", good_post(repeat="week", count="30"))
    assert response.status_code == 302
    submitted = client.get(response["Location"])
    html = submitted.content.decode()
    assert "Delivery 1 of a repeating search" in html
    # The confirmation says what repeats: the weekday, the time and zone, the most runs.
    assert re.search(
        r"Every (Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day at \d\d:\d\d \(Europe/Paris\) until you stop it, at most 52 times",
        html,
    )
    series_link = re.search(r'href="(/series/[^"]+/)"', submitted.content.decode()).group(1)
    page = client.get(series_link)
    assert page.status_code == 200 and b"Every " in page.content and b"Europe/Paris" in page.content
    (series,) = list(Series.objects.all())
    assert series.every == "week" and series.requested_count == 30 and series.weekday is not None
    # Without repeat (or "never") a post makes one job, no series.
    client.post("/", good_post(email="kai@example.org"))
    client.post("/", good_post(email="kim@example.org", repeat="never"))
    assert len(list(Series.objects.all())) == 1
    assert client.post("/", good_post(repeat="hourly")).status_code == 200  # refused, with a message
    assert len(list(Series.objects.all())) == 1


def test_the_admin_lists_series_and_stops_or_runs_one_now(cassandra_db, admin_client):
    job = deliver_run(submit_series())
    series = series_get(job.series_id)
    listing = admin_client.get("/admin/jobs/series/")
    assert listing.status_code == 200 and str(series.id)[:8] in listing.content.decode()
    detail_url = f"/admin/jobs/series/{series.id}/change/"
    detail = admin_client.get(detail_url)
    assert detail.status_code == 200 and b"Run now" in detail.content and b"series-runs" in detail.content
    assert admin_client.post(detail_url, {"action": "run_now"}).status_code == 302
    pending = records.job_get(series.next_job_id)
    assert aware(pending.run_at) <= dt.datetime.now(dt.UTC)
    admin_client.post(detail_url, {"action": "stop"})
    stopped = series_get(series.id)
    assert stopped.status == SeriesStatus.STOPPED and stopped.stop_reason == "operator"
    from django.contrib.admin.models import LogEntry

    assert [e.change_message for e in LogEntry.objects.order_by("id")] == [
        "Run now: queued to run now",
        "Stop: stopped",
    ]


def test_only_staff_see_the_series_admin(cassandra_db, client):
    assert client.get("/admin/jobs/series/").status_code == 302  # to the login page


def test_purge_jobs_purges_stopped_series_past_retention(cassandra_db, capsys):
    from django.core.management import call_command

    job = deliver_run(submit_series())
    series_stop(series_get(job.series_id))
    call_command("purge_jobs", "--older-than", "0m")
    assert "1 stopped series" in capsys.readouterr().out
    assert series_get(job.series_id).purged_at is not None


def test_a_series_with_a_last_day_stops_after_it_and_says_so(cassandra_db):
    first_day = (dt.datetime.now(PARIS) + dt.timedelta(hours=1)).date()  # its first run's, in an hour
    job = deliver_run(submit_series(last_day=first_day))
    series = series_get(job.series_id)
    assert series.status == SeriesStatus.STOPPED and series.stop_reason == "last_day"
    assert records.job_get(run_job_id(series.id, 2)) is None  # tomorrow is past its last day
    assert any(row.kind == "series_stopped" for row in JobMail.objects.filter(job_id=job.id))
    assert stop_reason_text(series) == "it reached the last day you chose"


def test_a_series_with_a_later_last_day_goes_on_and_promises_it(cassandra_db):
    last = dt.datetime.now(PARIS).date() + dt.timedelta(days=10)
    job = deliver_run(submit_series(last_day=last))
    series = series_get(job.series_id)
    assert series.is_active and records.job_get(run_job_id(series.id, 2)) is not None
    promise = series_promise(series)
    assert promise.startswith("Every day at ") and "(Europe/Paris)" in promise
    assert f"until {last.day} {last:%B %Y} or until you stop it, at most 52 times" in promise
