"""django-q2 entry points: one line each over ``jobs.services`` and ``jobs.run``.

Arguments are the job id (a plain string) and plain values, never personal data.
"""

from __future__ import annotations


def job_run(job_id: str) -> str:
    """Run a scheduled job to its end."""
    from jobs.run import run_job

    return run_job(job_id)


def email_send(job_id: str, kind: str, attempt: int = 1) -> str:
    """Send one of a job's emails (retried later while the mail server is down)."""
    from jobs.services import email_send

    return email_send(job_id, kind, attempt)


def purge_due() -> str:
    """Purge every finished job whose retention has passed."""
    from jobs.services import jobs_purge_due

    summary = jobs_purge_due()
    return f"purged {summary.jobs} jobs, {summary.archives} archives, {summary.bytes} bytes"
