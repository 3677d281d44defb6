"""django-q2 entry points: one line each over ``jobs.core.run``, ``jobs.mail.outbox``,
``jobs.core.services`` and ``jobs.core.reaper``.

Arguments are the job id (a plain string) and plain values, never personal data. Each
binds what its log lines are about (``jobs.lib.logcontext``) once, for the whole task.
"""

from __future__ import annotations

from jobs.core import reaper, run, services, webhooks
from jobs.lib.logcontext import log_context
from jobs.mail import api_keys, outbox


def job_run(job_id: str, retry: int = 0, run_id: str = "", stepped_back: str = "") -> str:
    """Run a scheduled job to its end (or leave it to the run that holds it)."""
    with log_context(task="job_run", job_id=job_id, whole_process=True):
        return run.job_run(job_id, retry, run_id, stepped_back)


def email_send(job_id: str, kind: str, attempt: int = 1, generation: int = 0, stepped_back: int = 0) -> str:
    """Send one of a job's emails, once (retried later while the mail server or
    Cassandra is down)."""
    with log_context(task="email_send", job_id=job_id, whole_process=True):
        return outbox.email_send(job_id, kind, attempt, generation, stepped_back)


def purge_due() -> str:
    """Purge every finished job whose retention has passed."""
    with log_context(task="purge_due", whole_process=True):
        summary = services.jobs_purge_due()
    return (
        f"purged {summary.jobs} jobs, {summary.archives} archives, {summary.bytes} bytes, "
        f"{summary.series} stopped series"
    )


def reap() -> str:
    """Queue again the runs, mails and webhooks nobody is working on."""
    with log_context(task="reap", whole_process=True):
        summary = reaper.jobs_reap()
        hooks = webhooks.webhooks_reap()
    return f"queued {summary.runs} runs, {summary.mails} mails and {hooks} webhooks again"


def webhook_send(job_id: str, event_id: str) -> str:
    """Try one webhook delivery of a job's event (retried later on failure)."""
    with log_context(task="webhook_send", job_id=job_id, whole_process=True):
        return webhooks.webhook_send(job_id, event_id)


def api_key_link_send(request_id: str) -> str:
    """Mail the one-time link to a mailbox's API keys."""
    with log_context(task="api_key_link_send", whole_process=True):
        return api_keys.key_link_send(request_id)
