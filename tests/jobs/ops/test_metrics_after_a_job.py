"""/metrics on a real gunicorn (two processes, multiprocess mode) and on a real worker's
listener: after one job submitted with the form and run by the worker, each counter
rose by what the job did, and no label carries the job's personal data."""

from __future__ import annotations

import pytest

from jobs.store import records
from jobs.store.events import job_events
from tests.mailserver import free_port, worker_mail_env
from tests.metrics_reader import scrape, total, value
from tests.waiting import wait_for
from tests.web_client import WebClient

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.imitation(total=60),
]
EMAIL = "grace.metrics@example.org"
COUNT = 7


def test_a_job_raises_the_web_and_worker_counters_by_its_counts(
    start_worker, start_web, imitation, mailserver
):
    port = free_port()
    start_worker(imitation, **worker_mail_env(mailserver.port, IMAGEDL_WORKER_METRICS_PORT=str(port)))
    web = start_web()
    worker_metrics, web_metrics = f"http://127.0.0.1:{port}/metrics", f"{web}/metrics"
    worker_before = wait_for(lambda: scrape(worker_metrics), timeout=60)
    assert worker_before, "the worker's listener does not answer"
    web_before = scrape(web_metrics)
    assert web_before

    client = WebClient(web)
    client.submit_ok(EMAIL, COUNT, query="red fox")
    mailserver.wait_for(EMAIL, "are ready", timeout=180)
    (job,) = records.jobs_list_newest_first(5).jobs  # the one job of the test
    job_id = job.id
    # A job started at once is told its outcome ("started" too, had it started later
    # than a minute after it was submitted): the mails sent are read from its events.
    assert wait_for(lambda: "ready" in mails_sent(job_id), timeout=30)
    sent = mails_sent(job_id)

    # The web process that took the form and the one answering may differ: the counts
    # add up over gunicorn's processes.
    web_after = scrape(web_metrics)
    submitted = "imagedl_jobs_submitted_total"
    assert value(web_after, submitted, source="form") == value(web_before, submitted, source="form") + 1
    assert value(web_after, submitted, source="api") == value(web_before, submitted, source="api")

    after = wait_for(lambda: _with_mails(scrape(worker_metrics), worker_before, len(sent)), timeout=30)
    assert after, "the worker's mail counters did not rise"

    def rose(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(worker_before, name, **labels)

    assert rose("imagedl_jobs_finished_total", outcome="done") == 1
    assert rose("imagedl_jobs_finished_total", outcome="failed") == 0
    assert rose("imagedl_images_kept_total") == COUNT
    assert rose("imagedl_job_wait_seconds_count") == 1
    assert rose("imagedl_job_run_seconds_count") == 1
    assert rose("imagedl_download_bytes_total") >= COUNT * 1000  # generated images of a few KB
    assert rose("imagedl_engine_searches_total", engine="bing", outcome="ok") == 1
    assert rose("imagedl_engine_searches_total", outcome="failed") == 0
    for kind in ("accepted", "started", "ready"):
        assert rose("imagedl_mails_total", kind=kind, outcome="sent") == sent.count(kind), kind
    rejected = sum(int(e.data["count"]) for e in job_events(job_id) if e.kind == "rejected")
    assert rose("imagedl_image_rejects_total") == rejected
    # Both servers count what they ask of Cassandra: the form's submission writes the
    # job, the worker's run reads and writes it under lightweight transactions.
    statements = "imagedl_cassandra_statements_total"
    assert total(web_after, statements, kind="write") + total(web_after, statements, kind="batch") > total(
        web_before, statements, kind="write"
    ) + total(web_before, statements, kind="batch")
    for kind in ("read", "lwt"):
        assert rose(statements, kind=kind) >= 1, kind

    # Gauges from the tables, in both; the worker's cluster has reported in.
    for samples in (after, web_after):
        assert ("imagedl_jobs", frozenset({("state", "running")})) in samples
        assert "imagedl_queue_oldest_seconds" in {name for name, _ in samples}
    assert wait_for(lambda: value(scrape(web_metrics), "imagedl_worker_clusters") >= 1, timeout=30)

    text = " ".join(f"{name} {sorted(labels)}" for name, labels in {**after, **web_after})
    for personal in ("grace", "red fox", "red+fox", str(job_id)):
        assert personal not in text


def mails_sent(job_id) -> list[str]:
    return [e.data["email"] for e in job_events(job_id) if e.kind == "email_sent"]


def _with_mails(samples, before, count: int):
    sent = total(samples, "imagedl_mails_total", outcome="sent") - total(
        before, "imagedl_mails_total", outcome="sent"
    )
    return samples if sent >= count else None
