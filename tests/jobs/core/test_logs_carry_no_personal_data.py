"""Log files outlive the purge, so they carry job ids and never a job's email, query or
page URL: not in event lines, not in the egress guard's refusals, not in tracebacks; in
the plain text format and in JSON (``IMAGEDL_LOG_FORMAT=json``), where every line is
one object and a run's lines carry its job, run and task without any call passing them."""

from __future__ import annotations

import copy
import json
import logging.config

import pytest
from django.conf import settings as django_settings

from jobs.core import run
from jobs.tasks import job_run  # the worker's entry: it binds the log context
from tests.factories import make_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(databases=["default", "cassandra"])]

EMAIL = "ada.lovelace.probe@example.org"
QUERY = "zebra quokka"
PERSONAL = ("lovelace", "zebra", "quokka")


def log_since(offset: int) -> str:
    with open(django_settings.LOG_FILE, encoding="utf-8", errors="replace") as handle:
        handle.seek(offset)
        return handle.read()


@pytest.fixture(params=["plain", "json"])
def log_format(request):
    """The project's logging, in one format or the other, for this test."""
    configured = copy.deepcopy(django_settings.LOGGING)
    for handler in configured["handlers"].values():
        handler["formatter"] = request.param
    logging.config.dictConfig(configured)
    yield request.param
    logging.config.dictConfig(django_settings.LOGGING)


@pytest.mark.imitation(total=30)
def test_a_run_leaves_its_id_and_no_personal_data_in_the_log_files(
    cassandra_db, imitation, image_hosts, monkeypatch, log_format
):
    log_file = django_settings.LOG_FILE
    start = log_file.stat().st_size if log_file.exists() else 0
    server = imitation

    searched = make_job(requested_count=5, email=EMAIL, query=QUERY)
    assert job_run(str(searched.id)) == "done: 5"

    # A page job whose page asks the browser for a host the egress guard refuses, and
    # whose run then fails with an error that quotes the page URL and the query.
    page_url = f"{server.base}/gallery-quokka?who=lovelace"
    server.pages["/gallery-quokka"] = (
        f'<img src="{image_hosts[0].url("/img/3001.png?w=300&h=300")}">'
        '<img src="http://zebra.intranet.example/lovelace.jpg">'
    )

    def broken(*args, **kwargs):
        raise RuntimeError(f"could not pack {page_url} for {QUERY!r} ({EMAIL})")

    monkeypatch.setattr(run, "write_archive", broken)
    paged = make_job(requested_count=1, email=EMAIL, page_url=page_url)
    assert job_run(str(paged.id)) == "failed: error"

    logged = log_since(start)
    assert f"job={searched.id}" in logged and f"job={paged.id}" in logged
    found = [word for word in PERSONAL if word in logged.lower()]
    assert found == [], [line for line in logged.splitlines() if any(w in line.lower() for w in found)][:5]
    assert "egress guard refused a request (not_loopback)" in logged  # the refusal is logged...
    assert "RuntimeError at " in logged  # ...and so is where the run broke
    if log_format == "json":
        _check_json_lines(logged, searched, paged)


def _check_json_lines(logged: str, searched, paged) -> None:
    records = [json.loads(line) for line in logged.splitlines()]  # every line one object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    for job in (searched, paged):
        # Its submission was logged before any task: the lines of its run follow.
        lines = [
            r for r in records if f"job={job.id}" in r["message"] and "event=scheduled" not in r["message"]
        ]
        assert lines, job.id
        assert all(r.get("job_id") == str(job.id) and r.get("task") == "job_run" for r in lines)
        ran = [r for r in lines if "event=kept" in r["message"] or "event=failed" in r["message"]]
        assert ran and all(r.get("run_id") for r in ran), ran  # bound once the run claimed its job
