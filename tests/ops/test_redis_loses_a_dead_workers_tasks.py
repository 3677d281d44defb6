"""With Redis, django-q2 takes a task off the list and keeps it in the worker's memory
until it runs (at most once, no lease): when that worker dies the task is gone. Each
kind of task is lost that way here, by a real worker with Redis killed (SIGKILL) while
it holds the task, and found again from Cassandra: each mail by the reaper, the purge by
the next pass of its schedule. (The run: test_scaleout_engines; a series' end step
lost with its run's worker: tests/jobs/core/test_tasks_lost_by_the_broker.py.)

The dying worker holds tasks without running them: its three task processes are busy
with ``time.sleep`` (any long task would do), and its pusher has taken the rest off the
list into its in-memory queue (room for workers squared)."""

from __future__ import annotations

import datetime as dt
import signal

import pytest
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from jobs.apps import PURGE_SCHEDULE_NAME
from jobs.core import services
from jobs.core.reaper import jobs_reap
from jobs.lib import scheduling
from jobs.models import JobMail, MailState
from jobs.store import records
from tests.factories import (
    IN_AN_HOUR,
    NOW,
    deliver_run,
    finished_minutes_ago,
    make_done_job,
    make_job,
    submit_series,
)
from tests.fixtures.servers import stop_worker
from tests.mailserver import worker_mail_env
from tests.waiting import wait_for, wait_for_count

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__"), pytest.mark.slow]

GRACE = 3  # the reaper's grace, seconds (no clock skew allowed for: one machine)
BUSY_WORKERS = 3
QUEUE_KEY = "django_q:imagedl:q"
SUBJECTS = {
    "accepted": "is scheduled",
    "started": "has started",
    "ready": "are ready",
    "failed": "could not finish",
    "series_stopped": "have stopped",
}


@pytest.fixture
def redis_queue(redis_server, monkeypatch, settings):
    """This process queues into the suite's Redis, as the app does with REDIS_URL set
    (django-q2 reads its broker from ``Conf``); the Redis client of the queue."""
    import redis

    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", redis_server.url)
    settings.IMAGEDL_REAPER_GRACE_SECONDS = GRACE
    settings.IMAGEDL_CLOCK_SKEW_SECONDS = 0
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    return client


@pytest.fixture
def redis_env(redis_server, mailserver):
    return worker_mail_env(
        mailserver.port,
        REDIS_URL=redis_server.url,
        IMAGEDL_Q_WORKERS=str(BUSY_WORKERS),
        IMAGEDL_REAPER_GRACE_SECONDS=str(GRACE),
        IMAGEDL_CLOCK_SKEW_SECONDS="0",
    )


def queued_tasks(client) -> list[dict]:
    return [SignedPackage.loads(item) for item in client.lrange(QUEUE_KEY, 0, -1)]


def start_busy_worker(start_worker, redis_queue, env):
    """A worker whose task processes are all asleep: what it takes, it keeps."""
    worker = start_worker(**env)
    for _ in range(BUSY_WORKERS):
        async_task("time.sleep", 600, group="busy")
    assert wait_for(lambda: redis_queue.llen(QUEUE_KEY) == 0, timeout=60), "the worker never took its tasks"
    return worker


def kill_holding_its_tasks(worker, redis_queue) -> None:
    assert wait_for(lambda: redis_queue.llen(QUEUE_KEY) == 0, timeout=30), queued_tasks(redis_queue)
    stop_worker(worker, signal.SIGKILL)
    assert redis_queue.llen(QUEUE_KEY) == 0  # no lease, no copy: the tasks died with it


def a_job_with_its_mail(kind: str):
    if kind == "accepted":
        return make_job(email="lost@example.org")
    if kind == "ready":
        return make_done_job(images=1, email="lost@example.org")
    if kind == "series_stopped":
        return deliver_run(submit_series(email="lost@example.org"))
    # "started" goes to a job that starts later than a minute after it was submitted.
    job = make_job(run_in=NOW if kind == "failed" else IN_AN_HOUR, email="lost@example.org")
    services.job_start_attempt(job)
    if kind == "failed":
        services.job_fail(job, "We could not find any images for that search.")
    return job


def mail_state(job_id, kind: str) -> str | None:
    row = JobMail.objects.filter(job_id=job_id, generation=1, kind=kind).first()
    return row.state if row else None


def subjects_with(mailserver, words: str) -> int:
    return sum(words in str(m["Subject"]) for m in mailserver.messages_to("lost@example.org"))


@pytest.mark.parametrize("kind", list(SUBJECTS))
def test_a_mail_lost_with_its_worker_is_sent_once_by_the_reaper(
    kind, redis_queue, redis_env, start_worker, mailserver, settings
):
    settings.IMAGEDL_SERIES_MAX_RUNS = 1  # the series stops after its first run
    dying = start_busy_worker(start_worker, redis_queue, redis_env)
    job = a_job_with_its_mail(kind)
    assert mail_state(job.id, kind) == MailState.PENDING
    kill_holding_its_tasks(dying, redis_queue)
    assert mail_state(job.id, kind) == MailState.PENDING and subjects_with(mailserver, SUBJECTS[kind]) == 0

    assert wait_for(lambda: jobs_reap().mails >= 1, timeout=GRACE + 30, interval=0.5)
    start_worker(**redis_env)
    assert wait_for(lambda: mail_state(job.id, kind) == MailState.SENT, timeout=90, interval=0.5)
    assert wait_for_count(lambda: subjects_with(mailserver, SUBJECTS[kind]), 1, timeout=30) == 1


def test_a_purge_lost_with_its_worker_is_made_up_by_the_next_pass(
    redis_queue, redis_env, start_worker, settings
):
    dying = start_busy_worker(start_worker, redis_queue, redis_env)
    job = make_done_job(images=1, email="lost@example.org")
    finished_minutes_ago(job, settings.IMAGEDL_RETENTION_MINUTES + 1)
    async_task(scheduling.PURGE_TASK, group="purge")  # what the schedule's pass queues
    assert wait_for(lambda: redis_queue.llen(QUEUE_KEY) == 0, timeout=30)
    kill_holding_its_tasks(dying, redis_queue)
    assert records.job_get(job.id).email == "lost@example.org"

    # The schedule comes round again: its next pass is due when a worker's scheduler looks.
    Schedule.objects.filter(name=PURGE_SCHEDULE_NAME).update(
        next_run=timezone.now() - dt.timedelta(seconds=1)
    )
    start_worker(**redis_env)
    assert wait_for(lambda: records.job_get(job.id).purged_at is not None, timeout=120, interval=1)
    purged = records.job_get(job.id)
    assert purged.email is None and purged.query is None
