"""django-q2 entry points of the jobs app: thin wrappers over services."""

from __future__ import annotations

import datetime as dt
import logging
import smtplib

from django.conf import settings
from django.utils import timezone

from jobs import records
from jobs.events import record_event

logger = logging.getLogger("imagedl.jobs")


def email_send(job_id: str, kind: str, attempt: int = 1) -> str:
    """Send one email; while the mail server is down, try again later (doubling delays).

    A finished job never fails because of mail: after the last try the event log says
    the email could not be sent, and the status page still has the link.
    """
    from jobs.emails import email_blocked, send_job_email

    job = records.get_job(job_id)
    if job is None or not job.email:
        return "skipped: no job or no address"
    blocked = email_blocked(job, first_try=attempt == 1)
    if blocked:
        why = {
            "suppressed": "the address asked never to be emailed again",
            "daily_cap": "the address had its day's share of emails",
        }[blocked]
        record_event(job.id, f"email_{blocked}", f"The {kind} email was not sent: {why}", level="warning")
        return f"skipped: {blocked}"
    try:
        send_job_email(job, kind)
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        if attempt >= settings.IMAGEDL_EMAIL_MAX_TRIES:
            # The error text can quote the address, which must not outlive the purge in
            # the event log or the log file: only the error's kind is kept.
            logger.warning("job=%s: giving up on the %s email (%s)", job.id, kind, type(exc).__name__)
            record_event(
                job.id,
                "email_failed",
                f"Could not send the {kind} email ({type(exc).__name__})",
                level="error",
                error=type(exc).__name__,
            )
            return "gave up"
        delay = settings.IMAGEDL_EMAIL_RETRY_SECONDS * 2 ** (attempt - 1)
        _schedule_email_retry(job_id, kind, attempt + 1, delay)
        record_event(
            job.id,
            "email_delayed",
            f"Mail server unavailable; the {kind} email will be retried in {delay} s",
            level="warning",
            error=type(exc).__name__,
        )
        return f"retry in {delay}s"
    record_event(job.id, "email_sent", f"Sent the {kind} email", email=kind)
    return "sent"


def _schedule_email_retry(job_id: str, kind: str, attempt: int, delay: int) -> None:
    from django_q.models import Schedule

    Schedule.objects.create(
        name=f"email-{kind}-{job_id}-{attempt}",
        func="jobs.tasks.email_send",
        args=repr((str(job_id), str(kind), int(attempt))),
        schedule_type=Schedule.ONCE,
        repeats=-1,
        next_run=timezone.now() + dt.timedelta(seconds=delay),
    )


def purge_due() -> str:
    from jobs.services import jobs_purge_due

    summary = jobs_purge_due()
    return f"purged {summary.jobs} jobs, {summary.archives} archives, {summary.bytes} bytes"


PURGE_SCHEDULE_NAME = "imagedl-purge-due"


def ensure_purge_schedule(**kwargs) -> None:
    """Create (or update) the recurring purge task. Connected to post_migrate."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=PURGE_SCHEDULE_NAME,
        defaults={
            "func": "jobs.tasks.purge_due",
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.IMAGEDL_PURGE_EVERY_MINUTES,
            "repeats": -1,
        },
    )
