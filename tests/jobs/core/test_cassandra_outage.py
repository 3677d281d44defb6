"""Cassandra going away under a real worker: stopped before a job's run time and back
once the run has found it gone, or killed outright in the middle of a run. The job is delivered (or
fails, with its mail) once the node is back; it is never left active.

Only the suite's own node is stopped and killed (tests/suite_node.py); the
``suite_cassandra`` fixture starts it again if a test left it down and waits until this
process's session answers before the next test.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import zipfile
from functools import partial

import pytest
from django_q.models import Task

from jobs.models import JobStatus
from jobs.store import records
from jobs.store.events import job_events
from tests import suite_node
from tests.factories import NOW, make_job, stored_archive
from tests.mailserver import worker_mail_env
from tests.waiting import holds_for, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

grace_job = partial(make_job, email="grace@example.org", query="red fox", run_in=NOW)


def env_for(mail_port: int, **extra: str) -> dict[str, str]:
    """A worker that steps back quickly: 3 s, then 6, 12, 24, 48, 96 (plus up to 30 s of
    django-q2's scheduler), with a reaper that queues again after 30 s."""
    return worker_mail_env(
        mail_port,
        IMAGEDL_Q_WORKERS="1",
        IMAGEDL_LEASE_SECONDS="9",
        IMAGEDL_TRANSIENT_RETRIES="6",
        IMAGEDL_TRANSIENT_BACKOFF_SECONDS="3",
        IMAGEDL_REAPER_GRACE_SECONDS="30",
        IMAGEDL_EMAIL_RETRY_SECONDS="5",
        **extra,
    )


def _status(job_id) -> str | None:
    """The job's status, or None while this process's session does not answer yet."""
    try:
        return records.job_get(job_id).status
    except Exception:
        return None


def _task_results(job_id) -> list[str]:
    """What the worker's finished run tasks of the job returned (django-q2 keeps them
    in the relational database, which stays up)."""
    tasks = Task.objects.filter(func="jobs.tasks.job_run")
    return [str(task.result) for task in tasks if str(job_id) in str(task.args)]


def _zip_names(job) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(stored_archive(job))) as archive:
        return archive.namelist()


@pytest.mark.imitation(total=100)
def test_node_stopped_before_the_run_time_and_back_later_delivers_the_job(
    start_worker, imitation, mailserver, suite_cassandra
):
    start_worker(imitation, **env_for(mailserver.port))
    job = grace_job(
        requested_count=10, run_in=dt.timedelta(seconds=25)
    )  # no "scheduled" mail: it starts at once

    suite_node.stop()  # a clean stop (SIGTERM), as an operator or a deploy does
    assert dt.datetime.now(dt.UTC) < job.run_at, "the node stopped after the run time"
    assert not suite_node.node().pid()
    # The run comes at its time (once django-q2's scheduler wakes: every 30 s), finds no
    # Cassandra and steps back; the node stays down until it has.
    stepped_back = lambda: any(result.startswith("retry in") for result in _task_results(job.id))  # noqa: E731
    assert wait_for(stepped_back, timeout=120, interval=0.5), _task_results(job.id)
    assert dt.datetime.now(dt.UTC) >= job.run_at

    suite_node.ensure_up()  # started again; this process's session answers again
    assert wait_for(lambda: _status(job.id) == JobStatus.DONE, timeout=300, interval=2), _status(job.id)
    ready = mailserver.wait_for("grace@example.org", "are ready", timeout=120)
    assert "10 images" in str(ready["Subject"])
    done = records.job_get(job.id)
    assert done.downloaded_count == 10 and done.attempts == 1
    assert len([n for n in _zip_names(done) if n.endswith(".jpg")]) == 10
    kinds = [e.kind for e in job_events(job.id)]
    assert "stepped_back" in kinds and kinds.index("stepped_back") < kinds.index("started"), kinds
    assert kinds.count("done") == 1


@pytest.mark.image_hosts(count=2, latency=0.5)
@pytest.mark.imitation(total=200)
def test_node_killed_mid_run_and_restarted_never_leaves_the_job_active(
    start_worker, imitation, mailserver, suite_cassandra
):
    # One download at a time per host, half a second each: the run is in the middle of
    # its downloads (kept images, progress, lease renewals) when the node dies.
    worker = start_worker(imitation, **env_for(mailserver.port, IMAGEDL_PER_HOST_CONNECTIONS="1"))
    job = grace_job(requested_count=30)
    assert wait_for(lambda: (records.job_get(job.id).downloaded_count or 0) >= 5, timeout=120)
    assert records.job_get(job.id).status == JobStatus.RUNNING

    os.kill(suite_cassandra.pid(), signal.SIGKILL)  # a crash: no drain, commit log replay
    assert wait_for(lambda: suite_cassandra.pid() is None, timeout=20, interval=0.1)
    # The run notices while the node is down: its task ends (stepping back, most often).
    assert wait_for(lambda: _task_results(job.id), timeout=90, interval=0.5), "the run never noticed"
    suite_node.ensure_up()

    # A crash the node recovers from is a passing fault: the run steps back and delivers.
    final = wait_for(lambda: _status(job.id) in (JobStatus.DONE, JobStatus.FAILED), timeout=300, interval=2)
    status = _status(job.id)
    kinds = [e.kind for e in job_events(job.id)]
    assert final and status == JobStatus.DONE, f"left {status}: {kinds}"
    finished = records.job_get(job.id)
    # Its one mail (it started at once): the outcome, once.
    mailserver.wait_for("grace@example.org", "are ready", timeout=120)
    assert [str(m["Subject"]) for m in mailserver.messages_to("grace@example.org")] == [
        "Your 30 images are ready: red fox"
    ]
    assert finished.downloaded_count == 30
    assert len([n for n in _zip_names(finished) if n.endswith(".jpg")]) == 30
    assert kinds.count("done") == 1
    # Stays finished: nothing runs it again afterwards; the worker is still serving.
    assert holds_for(lambda: _status(job.id) == status, 5)
    assert worker.poll() is None
