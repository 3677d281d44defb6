"""The job's mails, sent once per (job, generation, kind) however often a task runs.

``email_enqueue`` writes the outbox row (``job_mail``, state pending) and its listing
row (``mail_pending``) in one logged batch, then queues the send task. ``email_send`` claims the row in a
lightweight transaction before sending and marks it sent after: a copy of the task that
comes later finds it claimed or sent and does nothing. While the mail server is down
the row goes back to pending and the send is scheduled again with doubling delays. A
task lost by the broker is found by the reaper (``jobs.core.reaper``) from the listing rows.
An operator's retry is a new generation: its mails are new rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import uuid

from django.conf import settings
from django.utils import timezone

from jobs.lib import scheduling
from jobs.lib.metrics import stepback_count
from jobs.lib.transient import is_transient, transient_cause
from jobs.lib.utc import aware_utc, naive_utc
from jobs.mail import emails
from jobs.models import Job, JobMail, MailPending, MailState
from jobs.store import records
from jobs.store.cassandra import execute, prepared, write_together
from jobs.store.events import event_record
from jobs.store.queues import LEGACY_BUCKET, queue_bucket

logger = logging.getLogger("imagedl.jobs")

CLAIM_SECONDS = 120  # a sender that holds a claim this long without finishing has died
BLOCKED_REASONS = {
    "suppressed": "the address asked never to be emailed again",
    "daily_cap": "the address had its day's share of emails",
}
MAX_STEP_BACK_DELAY = 300  # seconds, as a job's run
BEFORE_OUTCOME = ("accepted", "started")  # mails that make no sense after the outcome's
OUTCOME_MAILS = ("ready", "failed")


def _generation(job: Job) -> int:
    return job.generation or 1


def email_enqueue(job: Job, kind: str) -> None:
    """Put one of the job's emails in the outbox and queue its sending."""
    queue_send(job.id, kind, email_outbox_add(job, kind))


def email_outbox_add(job: Job, kind: str) -> int:
    """Write one of the job's emails to the outbox, pending, and return its generation;
    its send is queued by the caller (``queue_send``)."""
    generation = _generation(job)
    # A plain insert: each (job, generation, kind) is enqueued once, by the one run or
    # verb that won its lightweight transaction (submit, the first claim, deliver, fail).
    # One logged batch: a mail row without its listing row would be a mail the reaper
    # never sees.
    write_together(email_outbox_writes(job.id, generation, kind))
    return generation


def email_outbox_writes(job_id: uuid.UUID, generation: int, kind: str) -> list[tuple[str, tuple]]:
    """The writes of a pending outbox row and its listing row, for a logged batch (the
    submission puts them in its job's batch: ``jobs.core.services.job_submit``)."""
    bucket = queue_bucket()
    mail = (
        f"INSERT INTO {JobMail.column_family_name()} "  # noqa: S608
        "(job_id, generation, kind, state, tries, queued_at, listed_in) VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    values = (job_id, generation, kind, MailState.PENDING, 0, naive_utc(timezone.now()), bucket)
    return [(mail, values), _pending_write(bucket, job_id, generation, kind)]


def _pending_write(bucket: str, job_id: uuid.UUID, generation: int, kind: str) -> tuple[str, tuple]:
    table = MailPending.column_family_name()
    cql = f"INSERT INTO {table} (bucket, job_id, generation, kind) VALUES (?, ?, ?, ?)"  # noqa: S608
    return cql, (bucket, job_id, generation, kind)


def email_enqueue_once(job: Job, kind: str) -> bool:
    """Like ``email_enqueue``, for a step that may run more than once (a series' end
    step, repaired by the reaper): the outbox row is written only if it is not there
    yet (a lightweight transaction, which cannot share a batch with another
    partition), and only then is the send queued. The listing row is written each
    time, so a step repeated after a failure between the two leaves both."""
    from cassandra.cqlengine.query import LWTException

    generation = _generation(job)
    bucket = queue_bucket()
    try:
        JobMail.if_not_exists().create(
            job_id=job.id,
            generation=generation,
            kind=kind,
            state=MailState.PENDING,
            queued_at=timezone.now(),
            listed_in=bucket,
        )
        created = True
    except LWTException:
        created = False
    write_together([_pending_write(bucket, job.id, generation, kind)])  # the reaper drops it once sent
    if created:
        queue_send(job.id, kind, generation)
    return created


def _add_row(job_id: uuid.UUID, generation: int, kind: str) -> None:
    from cassandra.cqlengine.query import LWTException

    try:
        JobMail.if_not_exists().create(
            job_id=job_id, generation=generation, kind=kind, state=MailState.PENDING, queued_at=timezone.now()
        )
    except LWTException:
        pass  # already in the outbox: this is a repeat


def queue_send(job_id: uuid.UUID, kind: str, generation: int, attempt: int = 1, delay: float = 0) -> None:
    name = f"email-{kind}-{job_id}" + (f"-{attempt}" if attempt > 1 else "")
    run_at = timezone.now() + dt.timedelta(seconds=delay) if delay else None
    args = (str(job_id), kind, attempt, generation)
    if run_at is None:
        scheduling.queue_at(name, scheduling.EMAIL_TASK, args, group="emails")
    else:
        scheduling.schedule_once(name, scheduling.EMAIL_TASK, args, run_at)


def email_send(job_id: str, kind: str, attempt: int = 1, generation: int = 0, stepped_back: int = 0) -> str:
    """Send one email at most once; while the mail server is down, try again later.

    A finished job never fails because of mail: after the last try the event log says
    the email could not be sent, and the status page still has the link. While
    Cassandra does not answer, the send steps back like a job's run (the same retries
    and doubling delay; ``stepped_back`` counts them), then it is left to the reaper.
    """
    try:
        return _email_send(job_id, kind, attempt, generation)
    except Exception as exc:
        if not is_transient(exc) or stepped_back >= settings.IMAGEDL_TRANSIENT_RETRIES:
            raise
        error = type(exc).__name__
        delay = min(settings.IMAGEDL_TRANSIENT_BACKOFF_SECONDS * 2**stepped_back, MAX_STEP_BACK_DELAY)
        logger.warning("job=%s: %s; the %s email is queued again in %d s", job_id, error, kind, delay)
        stepback_count(transient_cause(exc))
        scheduling.schedule_once(
            f"email-{kind}-{job_id}-{attempt}-back-{stepped_back + 1}",
            scheduling.EMAIL_TASK,
            (job_id, kind, attempt, generation, stepped_back + 1),
            timezone.now() + dt.timedelta(seconds=delay),
        )
        return f"retry in {delay}s ({error})"


def _email_send(job_id: str, kind: str, attempt: int, generation: int) -> str:
    job = records.job_get(job_id)
    if job is None:
        return "skipped: no job"
    generation = generation or _generation(job)
    row = JobMail.objects.filter(job_id=job.id, generation=generation, kind=kind).first()
    if row is None:  # a task queued without its mail row (one queued before the outbox existed)
        _add_row(job.id, generation, kind)
        row = JobMail.objects.filter(job_id=job.id, generation=generation, kind=kind).first()
    if row.state in MailState.DONE:
        return f"skipped: {row.state}"
    if generation != _generation(job) or not job.email:
        _finish(row, MailState.SUPERSEDED, row.claimed_by)
        return "skipped: superseded or no address"
    if kind in BEFORE_OUTCOME and _outcome_mailed(job.id, generation):
        return _drop_late(job, row)
    claim = _claim(row)
    if claim is None:
        return f"skipped: {row.state}"
    # The row counts the tries: a copy queued by the reaper (or a late task) resumes
    # from there, and only the mail's first try counts against the daily cap.
    attempt = max(attempt, (row.tries or 0) + 1)
    blocked = emails.email_blocked(job, first_try=attempt == 1)
    if blocked:
        _finish(row, MailState.BLOCKED, claim)
        why = BLOCKED_REASONS[blocked]
        event_record(
            job.id, f"email_{blocked}", f"The {kind} email was not sent: {why}", level="warning", email=kind
        )
        return f"skipped: {blocked}"
    try:
        emails.email_deliver(job, kind)
    except smtplib.SMTPRecipientsRefused as exc:
        if not _refused_for_good(exc):
            return _send_failed(job, row, claim, attempt, exc)
        _finish(row, MailState.FAILED, claim, tries=attempt)
        refused = f"The mail server refused the address for the {kind} email"
        event_record(job.id, "email_refused", refused, level="warning", email=kind)
        return "refused"
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        return _send_failed(job, row, claim, attempt, exc)
    _finish(row, MailState.SENT, claim)
    event_record(job.id, "email_sent", f"Sent the {kind} email", email=kind)
    return "sent"


def _refused_for_good(exc: smtplib.SMTPRecipientsRefused) -> bool:
    """Every recipient refused with a 5xx reply at RCPT: trying again will not help
    (a 4xx is the server asking to try later)."""
    codes = [code for code, _message in exc.recipients.values()]
    return bool(codes) and all(500 <= code < 600 for code in codes)


def _outcome_mailed(job_id: uuid.UUID, generation: int) -> bool:
    """Whether the job's outcome mail ("ready" or "failed") is out, or going out."""
    rows = JobMail.objects.filter(job_id=job_id, generation=generation, kind__in=OUTCOME_MAILS)
    return any(row.state in (MailState.SENDING, MailState.SENT) for row in rows)


def _drop_late(job: Job, row: JobMail) -> str:
    """A mail whose moment has passed: the user has the outcome already, and reading
    "started" after "ready" would only confuse. Dropped, and the job's events say so."""
    if _finish(row, MailState.SUPERSEDED, row.claimed_by, was=row.state):  # one copy says so
        event_record(
            job.id,
            "email_dropped",
            f"The {row.kind} email was not sent: the job's outcome had been mailed first",
            level="warning",
            email=row.kind,
        )
    return "skipped: too late"


def _claim(row: JobMail) -> uuid.UUID | None:
    """Take the row for this sender: pending, or sending under a claim that ran out."""
    now = timezone.now()
    if row.state in MailState.DONE:
        return None
    if row.state == MailState.SENDING:
        until = aware_utc(row.claim_until)
        if until is not None and until > now:
            return None
    claim = uuid.uuid4()
    result = execute(
        prepared(
            f"UPDATE {JobMail.column_family_name()} SET state = ?, claimed_by = ?, claim_until = ? "  # noqa: S608
            "WHERE job_id = ? AND generation = ? AND kind = ? IF state = ? AND claimed_by = ?"
        ),
        (
            MailState.SENDING,
            claim,
            naive_utc(now + dt.timedelta(seconds=CLAIM_SECONDS)),
            row.job_id,
            row.generation,
            row.kind,
            row.state,
            row.claimed_by,
        ),
    )
    return claim if result.was_applied else None


def _finish(
    row: JobMail, state: str, claim: uuid.UUID | None, *, was: str | None = None, **extra: object
) -> bool:
    """Move a claimed row on (sent, failed, back to pending); drop its listing row once
    it is done. With ``was``, only while the row is still in that state: copies of a
    task that read the same unclaimed row move it once between them."""
    values = {"state": state, "sent_at": timezone.now() if state == MailState.SENT else None, **extra}
    names = list(values)
    condition = "claimed_by = ?" + (" AND state = ?" if was is not None else "")
    result = execute(
        prepared(
            f"UPDATE {JobMail.column_family_name()} SET {', '.join(f'{n} = ?' for n in names)} "  # noqa: S608
            f"WHERE job_id = ? AND generation = ? AND kind = ? IF {condition}"
        ),
        (
            *(naive_utc(v) for v in values.values()),
            *(row.job_id, row.generation, row.kind, claim),
            *((was,) if was is not None else ()),
        ),
    )
    if result.was_applied and state in MailState.DONE:
        MailPending.objects(
            bucket=row.listed_in or LEGACY_BUCKET, job_id=row.job_id, generation=row.generation, kind=row.kind
        ).delete()
    return bool(result.was_applied)


def _send_failed(job: Job, row: JobMail, claim: uuid.UUID, attempt: int, exc: Exception) -> str:
    # The error text can quote the address, which must not outlive the purge in the
    # event log or the log file: only the error's kind is kept.
    error = type(exc).__name__
    kind = row.kind
    if attempt >= settings.IMAGEDL_EMAIL_MAX_TRIES:
        logger.warning("job=%s: giving up on the %s email (%s)", job.id, kind, error)
        _finish(row, MailState.FAILED, claim, tries=attempt)
        event_record(
            job.id,
            "email_failed",
            f"Could not send the {kind} email ({error})",
            level="error",
            error=error,
            email=kind,
        )
        return "gave up"
    delay = settings.IMAGEDL_EMAIL_RETRY_SECONDS * 2 ** (attempt - 1)
    # queued_at is when the retry is due: the reaper copies it only once that is past.
    due = timezone.now() + dt.timedelta(seconds=delay)
    _finish(row, MailState.PENDING, claim, tries=attempt, queued_at=due)
    queue_send(job.id, kind, row.generation, attempt + 1, delay)
    event_record(
        job.id,
        "email_delayed",
        f"Mail server unavailable; the {kind} email will be retried in {delay} s",
        level="warning",
        error=error,
        email=kind,
    )
    return f"retry in {delay}s"


def email_withdraw(job: Job, kind: str) -> None:
    """Take a mail not yet sent out of the outbox (its job could not be queued)."""
    row = JobMail.objects.filter(job_id=job.id, generation=_generation(job), kind=kind).first()
    if row is not None and row.state == MailState.PENDING:
        _finish(row, MailState.SUPERSEDED, row.claimed_by)
