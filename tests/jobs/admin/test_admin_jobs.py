"""The jobs admin against the real Cassandra node with a few thousand jobs."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from django.contrib.admin.models import LogEntry
from django.core.files.storage import default_storage
from django_q.models import Schedule

from jobs.core import services
from jobs.models import JobStatus
from jobs.store import cassandra, records
from tests.factories import make_done_job, make_job

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])
START = dt.datetime(2026, 5, 1, 6, 0, tzinfo=dt.UTC)
TOTAL = 2400


@pytest.fixture
def many_jobs(cassandra_db):
    """2400 jobs over 5 days, written with concurrent prepared inserts into the emptied
    test keyspace.

    Per test: Django flushes every database of a test that uses Cassandra (it has no
    transactions to roll back), so a module-wide data set would not survive."""
    from cassandra.concurrent import execute_concurrent_with_args

    keyspace = cassandra_db
    session = cassandra.execute("SELECT now() FROM system.local").response_future.session
    insert_job = session.prepare(
        f"INSERT INTO {keyspace}.job (id, created_at, email, query, requested_count, run_at, time_zone, status,"
        " downloaded_count, archive_bytes) VALUES (?, ?, ?, ?, ?, ?, 'UTC', ?, ?, ?)"
    )
    insert_day = session.prepare(
        f"INSERT INTO {keyspace}.job_by_day (day, created_at, job_id, status) VALUES (?, ?, ?, ?)"
    )
    insert_days = session.prepare(f"INSERT INTO {keyspace}.job_day (bucket, day) VALUES ('all', ?)")

    rows, day_rows, days = [], [], set()
    for n in range(TOTAL):
        created = START + dt.timedelta(minutes=3 * n)  # 2400 x 3 min = 5 days
        status = JobStatus.ALL[n % 4]
        job_id = uuid.UUID(int=n + 1)
        rows.append(
            (job_id, created, f"user{n}@example.org", f"query {n}", 10, created, status, n % 10, 1000 * n)
        )
        day_rows.append((created.date(), created, job_id, status))
        days.add((created.date(),))
    execute_concurrent_with_args(session, insert_job, rows, concurrency=100, raise_on_first_error=True)
    execute_concurrent_with_args(session, insert_day, day_rows, concurrency=100, raise_on_first_error=True)
    execute_concurrent_with_args(session, insert_days, list(days), concurrency=10, raise_on_first_error=True)
    return TOTAL


def ids_on(page_html: str) -> list[str]:
    return re.findall(r'name="ids" value="([0-9a-f-]{36})"', page_html)


def test_list_pages_through_every_job_newest_first(admin_client, many_jobs):
    seen, url, pages = [], "/admin/jobs/job/", 0
    while url and pages < 100:
        response = admin_client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        seen += ids_on(html)
        match = re.search(r'href="(\?[^"]*after=[^"]+)" id="older"', html)
        url = "/admin/jobs/job/" + match.group(1).replace("&amp;", "&") if match else None
        pages += 1
    assert len(seen) == TOTAL and len(set(seen)) == TOTAL
    assert pages == TOTAL // 50
    numbers = [int(i.replace("-", ""), 16) for i in seen]
    assert numbers == sorted(numbers, reverse=True)  # ids grow with creation time here


def test_filters_by_status_and_day(admin_client, many_jobs):
    html = admin_client.get("/admin/jobs/job/?status=failed").content.decode()
    ids = ids_on(html)
    assert len(ids) == 50
    assert all(records.job_get(i).status == "failed" for i in ids[:5])
    day = admin_client.get("/admin/jobs/job/?day=2026-05-01").content.decode()
    # 06:00 to 23:57 every 3 minutes = 360 jobs on the first day: 50 on the first page.
    assert len(ids_on(day)) == 50
    assert all(records.job_get(i).created_at.date() == dt.date(2026, 5, 1) for i in ids_on(day)[:5])


def test_search_by_id_email_and_query(admin_client, many_jobs):

    wanted = str(uuid.UUID(int=7))
    assert ids_on(admin_client.get(f"/admin/jobs/job/?q={wanted}").content.decode()) == [wanted]
    by_email = admin_client.get("/admin/jobs/job/?q=user2399@example.org").content.decode()
    assert ids_on(by_email) == [str(uuid.UUID(int=2400))]
    assert "Exact match on email or query" in by_email
    assert ids_on(admin_client.get("/admin/jobs/job/?q=query 2398").content.decode()) == [
        str(uuid.UUID(int=2399))
    ]


def test_detail_page_shows_fields_events_and_task_links(admin_client, cassandra_db):
    job = make_job(email="ops@example.org", query="herons", requested_count=5, time_zone="UTC")
    # Images belong to the run that kept them: the job (still scheduled) names one.
    assert records.job_write_if(job, {"run_id": uuid.uuid4()}, run_is=None)
    services.job_add_image(
        job,
        1,
        file_name="a.jpg",
        source_url="http://img.example/a.jpg",
        width=10,
        height=10,
        format="jpeg",
        bytes=100,
    )
    html = admin_client.get(f"/admin/jobs/job/{job.id}/change/").content.decode()
    assert "herons" in html and "ops@example.org" in html
    assert "Job scheduled for" in html
    assert "http://img.example/a.jpg" in html
    assert f"q=job-{job.id}" in html
    # Three weeks ahead at 03:04 (UTC, as the form reads it): always in the future.
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=21)).replace(
        hour=3, minute=4, second=0, microsecond=0
    )
    moved = admin_client.post(f"/admin/jobs/job/{job.id}/change/", {"run_at": f"{later:%Y-%m-%d %H:%M}"})
    assert moved.status_code == 302
    assert records.job_get(job.id).run_at == later.replace(tzinfo=None)
    assert Schedule.objects.get(name=f"job-{job.id}").next_run == later


def test_actions_cancel_retry_purge_are_logged(admin_client, cassandra_db):
    owls = dict(email="ops@example.org", query="owls", requested_count=5)
    a, b = make_job(**owls), make_job(**owls)
    c = make_done_job(images=1, **owls)
    path = c.archive_path
    admin_client.post("/admin/jobs/job/action/", {"action": "cancel", "ids": [str(a.id), str(b.id)]})
    assert records.job_get(a.id).status == records.job_get(b.id).status == JobStatus.CANCELLED
    assert not Schedule.objects.filter(name__in=[f"job-{a.id}", f"job-{b.id}"]).exists()
    admin_client.post("/admin/jobs/job/action/", {"action": "retry", "ids": [str(a.id)]})
    assert records.job_get(a.id).status == JobStatus.SCHEDULED
    admin_client.post("/admin/jobs/job/action/", {"action": "purge", "ids": [str(c.id)]})
    purged = records.job_get(c.id)
    assert purged.email is None and purged.query is None and not default_storage.exists(path)
    assert purged.requested_count == 5
    messages = list(LogEntry.objects.order_by("id").values_list("object_id", "change_message"))
    assert (str(a.id), "Cancel: cancelled") in messages
    assert (str(a.id), "Retry: queued again") in messages
    assert (str(c.id), "Purge now: purged") in messages


def test_only_staff_get_in(client, django_user_model, cassandra_db):
    assert client.get("/admin/jobs/job/").status_code == 302  # to the login page
    user = django_user_model.objects.create_user("visitor", password="pw12345!")
    client.force_login(user)
    assert client.get("/admin/jobs/job/").status_code == 302
    assert client.post("/admin/jobs/job/action/", {"action": "purge", "ids": ["x"]}).status_code == 302
    staff = django_user_model.objects.create_user("clerk", password="pw12345!", is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/jobs/job/").status_code == 403  # staff without the view permission


def test_admin_index_and_django_q_pages_work(admin_client):
    assert admin_client.get("/admin/").status_code == 200
    for page in ("schedule", "ormq", "failure", "success"):
        assert admin_client.get(f"/admin/django_q/{page}/").status_code == 200


def test_overdue_jobs_are_filtered_and_flagged_and_the_index_sums_up(admin_client, cassandra_db, settings):
    from django.core.cache import cache

    from tests.factories import make_job_record

    settings.IMAGEDL_REAPER_GRACE_SECONDS = 120
    late = make_job_record(run_in=-dt.timedelta(minutes=25))
    waiting = make_job_record(run_in=-dt.timedelta(seconds=20))
    make_job_record(run_in=dt.timedelta(hours=3))
    dead = make_job_record(run_in=-dt.timedelta(minutes=5))
    assert records.job_write_if(
        dead,
        {"status": JobStatus.RUNNING, "lease_until": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)},
        run_is=None,
    )

    page = admin_client.get("/admin/jobs/job/?overdue=1").content.decode()
    assert sorted(ids_on(page)) == sorted([str(late.id), str(dead.id)])
    assert page.count('class="overdue"') == 2
    listed = admin_client.get("/admin/jobs/job/").content.decode()
    assert str(waiting.id) in ids_on(listed) and listed.count('class="overdue"') == 2

    cache.clear()
    index = admin_client.get("/admin/").content.decode()
    assert re.search(r'id="count-scheduled">2<', index) and re.search(r'id="count-running">1<', index)
    assert re.search(r'id="count-overdue">2<', index)
    oldest = re.search(r'id="oldest-waiting"><a href="([^"]+)">', index)
    assert oldest and str(late.id) in oldest.group(1)
