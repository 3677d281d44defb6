"""Faults with real processes: tasks handed out twice, a worker killed by the task
time-out, a mail server that hangs. (Killed workers: test_job_end_to_end; Cassandra
stopped and killed: test_cassandra_outage.)"""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import socket
import threading
import time
import uuid
import zipfile
from collections import Counter
from functools import partial
from pathlib import Path

import pytest
from django.conf import settings
from django_q.models import Task
from django_q.tasks import async_task

from jobs.lib import scheduling
from jobs.lib.links import download_url
from jobs.mail import outbox
from jobs.models import JobMail, JobStatus, MailState
from jobs.store import records
from jobs.store.events import job_events
from jobs.store.records import download_expires_at
from tests.factories import NOW, make_done_job, make_job
from tests.mailserver import worker_mail_env
from tests.processes import BrowserTrail, parent_of
from tests.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True, databases="__all__")]

grace_job = partial(make_job, email="grace@example.org", query="red fox", run_in=NOW)
SUBJECTS = {"accepted": "scheduled", "started": "has started", "ready": "are ready"}


def env_for(mail_port: int, **extra: str) -> dict[str, str]:
    return worker_mail_env(mail_port, IMAGEDL_Q_WORKERS="1", IMAGEDL_LEASE_SECONDS="9", **extra)


def _task_results(job_id: uuid.UUID, func: str) -> list[str]:
    return [str(task.result) for task in Task.objects.filter(func=func) if str(job_id) in str(task.args)]


# Copies come late: from the broker's retry of a task still in hand (IMAGEDL_TASK_RETRY)
# or from the reaper (its grace, then its period). Both are made short here, and the
# test watches past both, so a second delivery would be seen.
SHORT_RETRY = {"IMAGEDL_JOB_TIMEOUT": "90", "IMAGEDL_TASK_RETRY": "95", "IMAGEDL_REAPER_GRACE_SECONDS": "5"}
WATCH_FOR_COPIES = 95 + 5 + 60 + 10  # seconds: the retry, the reaper's grace and period, a margin


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.imitation(total=200)
def test_a_job_and_its_mails_handed_out_twice_at_once_deliver_once(
    client, start_worker, imitation, mailserver
):
    job = grace_job(requested_count=30)
    # A copy of the run task, as a lease that ran out in the broker would make: each of
    # the two workers (one process each) takes one of them at the same moment.
    async_task(scheduling.RUN_TASK, str(job.id), task_name=f"job-{job.id}-copy", group="jobs")
    for _ in range(2):
        start_worker(imitation, **env_for(mailserver.port, **SHORT_RETRY))
    assert wait_for(lambda: records.job_get(job.id).status == JobStatus.DONE, timeout=180, interval=1)
    assert wait_for(lambda: len(_task_results(job.id, scheduling.RUN_TASK)) == 2, timeout=30)
    results = sorted(_task_results(job.id, scheduling.RUN_TASK))
    assert results[0] == "done: 30" and results[1].startswith("skipped"), results
    mailserver.wait_for("grace@example.org", "are ready", timeout=60)
    # Every email task handed out twice more: still one mail of each kind.
    for kind in SUBJECTS:
        for copy in range(2):
            async_task(
                scheduling.EMAIL_TASK, str(job.id), kind, 1, 1, task_name=f"email-{kind}-{job.id}-c{copy}"
            )
    # The mails' own tasks (one per row) and the six copies have all run.
    tasks = JobMail.objects.filter(job_id=job.id).count() + 2 * len(SUBJECTS)
    assert wait_for(lambda: len(_task_results(job.id, scheduling.EMAIL_TASK)) >= tasks, timeout=60)

    def subjects() -> Counter:
        return Counter(
            kind
            for message in mailserver.messages_to("grace@example.org")
            for kind, words in SUBJECTS.items()
            if words in str(message["Subject"])
        )

    # A job that starts at once is told its outcome alone ("started" too, should its
    # start come later than a minute). Each kind goes once, or not at all when its first
    # try came after the outcome's mail (the copies of kinds never queued included):
    # then it was dropped, and said so.
    states = {row.kind: row.state for row in JobMail.objects.filter(job_id=job.id)}
    assert states.get("ready") == MailState.SENT, states
    assert set(states.values()) <= {MailState.SENT, MailState.SUPERSEDED}, states
    once = Counter({kind: 1 for kind, state in states.items() if state == MailState.SENT})
    assert subjects() == once
    dropped = [e for e in job_events(job.id) if e.kind == "email_dropped"]
    assert len(dropped) == len(SUBJECTS) - len(once)
    # Past the broker's retry and the reaper's pass: no late copy delivers or mails again.
    assert not wait_for(lambda: subjects() != once, timeout=WATCH_FOR_COPIES, interval=2)
    assert sorted(_task_results(job.id, scheduling.RUN_TASK))[0] == "done: 30"
    # One archive exists, the delivered one, and the link gives it.
    done = records.job_get(job.id)
    archives = sorted((Path(settings.MEDIA_ROOT) / "archives").glob(f"{job.id.hex}*"))
    assert [f"archives/{path.name}" for path in archives] == [done.archive_path]
    assert done.downloaded_count == 30 and done.attempts == 1
    response = client.get(download_url(job.id, download_expires_at(done)).replace("http://testserver", ""))
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert len([name for name in archive.namelist() if name.endswith(".jpg")]) == 30
    assert [e.kind for e in job_events(job.id)].count("done") == 1


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.image_hosts(count=1, latency=2.0)
@pytest.mark.imitation(total=100)
def test_a_worker_killed_by_the_task_time_out_leaves_no_browser(start_worker, imitation):
    worker = start_worker(
        imitation,
        IMAGEDL_JOB_TIMEOUT="10",
        IMAGEDL_TASK_RETRY="900",
        IMAGEDL_PER_HOST_CONNECTIONS="1",
        IMAGEDL_Q_WORKERS="1",
    )
    browser = BrowserTrail(worker.pid)
    job = grace_job(requested_count=40)  # 40 images at 2 s each, one at a time: far past 10 s
    assert wait_for(browser.running, timeout=60), "the browser never started"
    assert wait_for(lambda: "reincarnated worker" in Path(worker.log_path).read_text(), timeout=60)
    assert wait_for(lambda: not browser.running(), timeout=15), browser.running()
    assert records.job_get(job.id).status == JobStatus.RUNNING  # left to the lease and the reaper


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.image_hosts(count=1, latency=2.0)
@pytest.mark.imitation(total=100)
def test_a_worker_process_killed_outright_leaves_no_browser(start_worker, imitation):
    """SIGKILL (the OOM killer, an operator) runs no ``finally``: the kernel ends the
    browser with the process that started it."""
    worker = start_worker(imitation, IMAGEDL_PER_HOST_CONNECTIONS="1", IMAGEDL_Q_WORKERS="1")
    browser = BrowserTrail(worker.pid)
    grace_job(requested_count=40)
    assert wait_for(browser.drivers, timeout=60), "the browser never started"
    # Chromium itself up under its driver (not only the driver), as when a job runs.
    assert wait_for(lambda: set(browser.running()) - set(browser.drivers()), timeout=60)
    (task_process,) = {parent_of(pid) for pid in browser.drivers()}
    os.kill(task_process, signal.SIGKILL)
    assert wait_for(lambda: not browser.running(), timeout=15), browser.running()


class HangingMailServer:
    """Accepts SMTP connections and then says nothing, for ever."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.sock.close()


def test_a_mail_server_that_hangs_times_out_and_the_send_is_retried(cassandra_db, settings):
    job = make_done_job(email="grace@example.org")
    server = HangingMailServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 2
    settings.IMAGEDL_EMAIL_RETRY_SECONDS = 30
    try:
        started = time.monotonic()
        result = outbox.email_send(str(job.id), "ready", 1, 1)
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert server.accepted, "the send never connected"
    assert result == "retry in 30s" and elapsed < 10
    row = JobMail.objects.filter(job_id=job.id, generation=1, kind="ready").first()
    assert row.state == MailState.PENDING and row.tries == 1
    assert records.job_get(job.id).status == JobStatus.DONE
    assert "email_delayed" in [e.kind for e in job_events(job.id)]


def test_a_mail_task_lost_by_the_broker_is_sent_by_the_reaper(cassandra_db, settings):
    from django.core import mail
    from django_q.models import OrmQ

    from jobs.core.reaper import jobs_reap

    settings.IMAGEDL_REAPER_GRACE_SECONDS = 1
    make_done_job(email="grace@example.org")
    OrmQ.objects.all().delete()  # the broker lost every task (a Redis worker that died)
    mail.outbox.clear()
    summary = jobs_reap(now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5))
    assert summary.mails == 1  # ready: a job that started at once has no other mail
    for queued in OrmQ.objects.all():
        task = queued.task
        assert task["func"] == scheduling.EMAIL_TASK
        outbox.email_send(*task["args"])
    assert [SUBJECTS["ready"] in m.subject for m in mail.outbox] == [True]
    assert jobs_reap(now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)).mails == 0
