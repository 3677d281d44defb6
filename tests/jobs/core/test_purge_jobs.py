"""`manage.py purge_jobs` removes exactly what is past retention, and it is scheduled."""

from __future__ import annotations

import logging

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django_q.models import Schedule

from jobs.store import records
from jobs.store.events import event_record
from tests.factories import finished_minutes_ago, make_done_job

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])


def finished_job(minutes_ago: int):
    """A delivered job with a 2 KB archive that finished ``minutes_ago``."""
    job = make_done_job(email="p@example.org", query="gulls", images=1, archive=b"x" * 2048)
    finished_minutes_ago(job, minutes_ago)
    return job, job.archive_path


def test_purges_past_retention_and_nothing_else(cassandra_db, capsys, settings):
    settings.IMAGEDL_RETENTION_MINUTES = 30
    old, old_path = finished_job(31)
    young, young_path = finished_job(29)
    call_command("purge_jobs", "--dry-run")
    assert "would purge 1 job(s), 1 archive(s), 2.0 KB" in capsys.readouterr().out
    assert default_storage.exists(old_path)
    call_command("purge_jobs")
    assert "purged 1 job(s)" in capsys.readouterr().out
    assert not default_storage.exists(old_path) and records.job_get(old.id).email is None
    assert default_storage.exists(young_path) and records.job_get(young.id).email == "p@example.org"


def test_older_than_overrides_retention(cassandra_db, capsys):
    recent, _ = finished_job(10)
    older, _ = finished_job(200)
    call_command("purge_jobs", "--older-than", "2h")
    assert "purged 1 job(s)" in capsys.readouterr().out
    assert records.job_get(older.id).email is None and records.job_get(recent.id).email == "p@example.org"
    with pytest.raises(CommandError, match="90m, 2h or 7d"):
        call_command("purge_jobs", "--older-than", "soon")


def test_migrate_schedules_the_purge(cassandra_db):
    schedule = Schedule.objects.get(name="imagedl-purge-due")
    assert schedule.func == "jobs.tasks.purge_due" and schedule.schedule_type == Schedule.MINUTES


def test_events_are_mirrored_to_the_log_with_the_job_id(cassandra_db, caplog):
    job, _ = finished_job(1)
    with caplog.at_level(logging.INFO, logger="imagedl.jobs"):
        event_record(job.id, "rejected", "3 rejected: too small", reason="too_small", count=3)
    line = caplog.records[-1].getMessage()
    assert f"job={job.id}" in line and "event=rejected" in line and "count=3" in line
