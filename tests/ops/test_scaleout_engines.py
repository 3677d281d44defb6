"""The relational database and the broker of several machines, for real: PostgreSQL
(DATABASE_URL=postgres://...) and Redis (REDIS_URL), started by the devtools starters.

Jobs are submitted by a separate process (``manage.py shell``) with the same
environment as the workers, as a web process on another machine would."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections import Counter

import pytest
from django.conf import settings

from jobs.models import JobMail, JobStatus, MailState
from jobs.store import records
from jobs.store.events import job_events
from tests.fixtures.servers import stop_worker
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

SUBMIT = """
import datetime as dt, json
from django.conf import settings
from tests.factories import make_job
now = make_job(email="grace@example.org", query="red fox", requested_count={count}, run_in=dt.timedelta(0))
later = make_job(email="grace@example.org", query="owls", requested_count=3, run_in=dt.timedelta(hours=2))
print(json.dumps({{"now": str(now.id), "later": str(later.id), "db": settings.DATABASES["default"]["ENGINE"],
                  "broker": sorted(k for k in ("orm", "redis") if k in settings.Q_CLUSTER)}}))
"""


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def submit(env: dict[str, str], count: int) -> dict[str, str]:
    """Two jobs submitted by another process: one due now, one in two hours."""
    return json.loads(manage(env, "shell", "-c", SUBMIT.format(count=count)).strip().splitlines()[-1])


def mail_kinds(mailserver, address: str) -> Counter:
    words = {"accepted": "scheduled", "started": "has started", "ready": "are ready"}
    return Counter(
        kind
        for message in mailserver.messages_to(address)
        for kind, text in words.items()
        if text in str(message["Subject"])
    )


@pytest.fixture
def fresh_postgres_database(postgres_server):
    """A database of its own in the suite's PostgreSQL, for one test; its DATABASE_URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres_server.psql(f'CREATE DATABASE "{name}" OWNER imagedl')
    yield postgres_server.url.rsplit("/", 1)[0] + f"/{name}"
    postgres_server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.imitation(total=60)
def test_on_postgresql_migrate_submit_schedule_and_deliver(
    worker_env, fresh_postgres_database, start_worker, imitation, mailserver
):
    import psycopg

    env = {**worker_env, "DATABASE_URL": fresh_postgres_database}
    manage(env, "migrate", "--noinput", "-v0")
    jobs = submit(env, count=6)
    assert jobs["db"] == "django.db.backends.postgresql" and jobs["broker"] == ["orm"]
    pg_url = fresh_postgres_database.replace("postgres://", "postgresql://", 1)
    with psycopg.connect(pg_url) as conn:
        schedules = dict(conn.execute("SELECT name, func FROM django_q_schedule").fetchall())
        queued = conn.execute("SELECT count(*) FROM django_q_ormq").fetchone()[0]
    # The later job waits as a schedule in PostgreSQL; the purge and reaper recur there;
    # the job due now and its "accepted" mails are tasks in PostgreSQL's queue table.
    assert schedules[f"job-{jobs['later']}"] == "jobs.tasks.job_run"
    assert {"imagedl-purge-due", "imagedl-reaper"} <= set(schedules)
    assert queued >= 2

    start_worker(
        imitation,
        DATABASE_URL=fresh_postgres_database,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(mailserver.port),
        IMAGEDL_BASE_URL="http://testserver",
    )
    assert wait_for(lambda: records.job_get(jobs["now"]).status == JobStatus.DONE, timeout=180, interval=1)
    assert records.job_get(jobs["now"]).downloaded_count == 6
    assert records.job_get(jobs["later"]).status == JobStatus.SCHEDULED
    mailserver.wait_for("grace@example.org", "are ready", timeout=60)
    with psycopg.connect(pg_url) as conn:
        runs = conn.execute("SELECT success FROM django_q_task WHERE func = 'jobs.tasks.job_run'").fetchall()
    assert runs == [(True,)]  # the run's task, recorded in PostgreSQL
    # The default database of this process (SQLite) saw none of it.
    from django_q.models import Schedule

    assert not Schedule.objects.filter(name=f"job-{jobs['later']}").exists()


@pytest.mark.imitation(total=300)
def test_the_redis_broker_loses_a_killed_workers_task_and_the_reaper_recovers_the_job(
    worker_env, redis_server, start_worker, imitation, image_hosts, mailserver
):
    import redis

    broker = redis.Redis.from_url(redis_server.url)
    broker.flushdb()
    for host in image_hosts:
        host.latency = 0.8
    env = {
        "REDIS_URL": redis_server.url,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(mailserver.port),
        "IMAGEDL_BASE_URL": "http://testserver",
        "IMAGEDL_Q_WORKERS": "1",
        "IMAGEDL_PER_HOST_CONNECTIONS": "1",
        "IMAGEDL_LEASE_SECONDS": "6",
        "IMAGEDL_REAPER_GRACE_SECONDS": "5",
    }
    first = start_worker(imitation, **env)
    jobs = submit({**worker_env, **env}, count=30)
    assert jobs["broker"] == ["redis"]
    job_id = jobs["now"]
    assert wait_for(lambda: (records.job_get(job_id).downloaded_count or 0) >= 4, timeout=120)
    stop_worker(first, signal.SIGKILL)

    # The task went with the worker: Redis holds no copy of it (no lease, no ack).
    from django_q.signing import SignedPackage

    queued = [SignedPackage.loads(item) for item in broker.lrange("django_q:imagedl:q", 0, -1)]
    assert not [task for task in queued if task["func"] == "jobs.tasks.job_run" and job_id in task["args"]]
    assert records.job_get(job_id).status == JobStatus.RUNNING

    start_worker(imitation, **env)  # nothing in the queue for it: only the reaper can help
    assert wait_for(lambda: records.job_get(job_id).status == JobStatus.DONE, timeout=300, interval=1)
    done = records.job_get(job_id)
    assert done.downloaded_count == 30 and done.attempts == 2
    kinds = [event.kind for event in job_events(job_id)]
    assert "requeued" in kinds and kinds.count("done") == 1
    mailserver.wait_for("grace@example.org", "are ready", timeout=60)
    assert wait_for(
        lambda: JobMail.objects.filter(job_id=done.id, kind="ready").first().state == MailState.SENT,
        timeout=30,
    )
    # The later job's "accepted"; the job of now: its outcome (and "started" only if its
    # first start came later than a minute after it was submitted), each once.
    kinds = mail_kinds(mailserver, "grace@example.org")
    assert kinds["accepted"] == 1 and kinds["ready"] == 1 and kinds["started"] <= 1, kinds
    # The job due in two hours waits as a schedule in the Django database, not in Redis.
    assert records.job_get(jobs["later"]).status == JobStatus.SCHEDULED
