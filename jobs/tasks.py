"""django-q2 entry points: one line each over ``jobs.run``, ``jobs.outbox``,
``jobs.services`` and ``jobs.reaper``.

Arguments are the job id (a plain string) and plain values, never personal data.
"""

from __future__ import annotations


def job_run(job_id: str, retry: int = 0, run_id: str = "", stepped_back: str = "") -> str:
    """Run a scheduled job to its end (or leave it to the run that holds it)."""
    from jobs.run import run_job

    return run_job(job_id, retry, run_id, stepped_back)


def email_send(job_id: str, kind: str, attempt: int = 1, generation: int = 0, stepped_back: int = 0) -> str:
    """Send one of a job's emails, once (retried later while the mail server or
    Cassandra is down)."""
    from jobs.outbox import email_send

    return email_send(job_id, kind, attempt, generation, stepped_back)


def purge_due() -> str:
    """Purge every finished job whose retention has passed."""
    from jobs.services import jobs_purge_due

    summary = jobs_purge_due()
    return (
        f"purged {summary.jobs} jobs, {summary.archives} archives, {summary.bytes} bytes, "
        f"{summary.series} stopped series"
    )


def reap() -> str:
    """Queue again the runs and mails nobody is working on."""
    from jobs.reaper import jobs_reap

    summary = jobs_reap()
    return f"queued {summary.runs} runs and {summary.mails} mails again"
