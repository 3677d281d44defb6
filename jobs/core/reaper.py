"""The reaper: finds work nobody is doing, from the job rows, not from the broker.

A recurring django-q2 task (like the purge). Each pass reads the bucket partitions of
``job_active`` and ``mail_pending`` from their watermarks (``jobs.store.queues``) and
queues again:

- a running job whose run's lease ran out (its worker died, or its task was lost);
- a scheduled job more than ``IMAGEDL_REAPER_GRACE_SECONDS`` past its time with no
  live lease (its task was lost, or the scheduler was down);
- a mail not sent that long after it was queued, or whose sender's claim ran out;
- the outcome mail of a job that finished just before its worker died, and, for a
  run of a recurring series, its end step (the series' next run; ``jobs.series``);
  such a job also gets its purge row (``job_purge_due``) if it has none yet.

At most one copy of a job's run is queued per grace period (``requeued_at``), however
often the reaper runs. A copy of a task that was only late is harmless: the lease and the outbox let one win.
A job over its attempt limit is failed, with its mail, by the run the reaper queues.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from jobs.core import hooks, services
from jobs.lib import scheduling
from jobs.lib.metrics import reaper_action_count
from jobs.lib.utc import aware_utc
from jobs.mail.emails import KINDS
from jobs.mail.outbox import email_enqueue, queue_send
from jobs.models import Job, JobActive, JobMail, JobStatus, MailPending, MailState
from jobs.store import records
from jobs.store.events import event_record
from jobs.store.queues import queue_buckets, queue_mark_advance

logger = logging.getLogger("imagedl.jobs")

ACTIVE_QUEUE = "job_active"
MAIL_QUEUE = "mail_pending"


@dataclass
class ReapSummary:
    runs: int = 0
    mails: int = 0
    cleared: int = 0


def jobs_reap(*, now: dt.datetime | None = None) -> ReapSummary:
    """One pass of the reaper; returns what it queued again."""
    now = now or timezone.now()
    grace = dt.timedelta(seconds=settings.IMAGEDL_REAPER_GRACE_SECONDS)
    summary = ReapSummary()
    oldest_left = None
    for bucket in queue_buckets(ACTIVE_QUEUE, now, now=now):
        for row in list(JobActive.objects.filter(bucket=bucket).limit(None)):
            if not _reap_job(row, now, grace, summary):
                oldest_left = oldest_left or bucket
    queue_mark_advance(ACTIVE_QUEUE, oldest_left, until=now, now=now)
    oldest_left = None
    for bucket in queue_buckets(MAIL_QUEUE, now, now=now):
        for pending in _in_mail_order(MailPending.objects.filter(bucket=bucket).limit(None)):
            mail = _mail_needing_sending(pending, now, grace)
            if mail is False:
                continue  # done: its listing row is gone
            oldest_left = oldest_left or bucket
            if mail is not None:  # resumed from its tries: a copy is not a new first try
                queue_send(pending.job_id, pending.kind, pending.generation, attempt=(mail.tries or 0) + 1)
                reaper_action_count("mail_requeued")
                summary.mails += 1
    queue_mark_advance(MAIL_QUEUE, oldest_left, until=now, now=now)
    if summary.runs or summary.mails:
        logger.warning("reaper: queued %d runs and %d mails again", summary.runs, summary.mails)
    return summary


def _reap_job(row: JobActive, now: dt.datetime, grace: dt.timedelta, summary: ReapSummary) -> bool:
    """Look after one listed job; whether its row is gone (the job finished)."""
    job = records.job_get(row.job_id)
    if job is None or job.status not in JobStatus.ACTIVE:
        if job is not None:  # its worker may have died right after the outcome
            services.job_purge_row_ensure(job)
        lost = _queue_lost_outcome_mail(job)
        reaper_action_count("outcome_mail", lost)
        summary.mails += lost
        # Its end steps may not have run (the worker died, or a step failed): they
        # are idempotent. Should one fail again, the row stays for the next pass.
        if job is not None and not hooks.end_steps_run(job):
            return False
        row.delete()
        reaper_action_count("cleared")
        summary.cleared += 1
        return True
    if services.lease_held(job.lease_until, now):
        return False  # someone is working on it
    late = job.status == JobStatus.SCHEDULED and not job.held and aware_utc(job.run_at) < now - grace
    if (job.status == JobStatus.RUNNING or late) and _requeue_due(job, now, grace):
        what = "its run stopped answering" if job.status == JobStatus.RUNNING else "its run never started"
        event_record(job.id, "requeued", f"Queued again: {what}", level="warning")
        scheduling.queue_at(f"job-{job.id}-reaped", scheduling.RUN_TASK, (str(job.id),), group="jobs")
        reaper_action_count("takeover" if job.status == JobStatus.RUNNING else "late_start")
        summary.runs += 1
    return False


def _in_mail_order(rows) -> list[MailPending]:
    """A job's mails in the order its life sends them: queued again together after a
    broker lost them, "started" must not come after "ready" (it would be dropped as
    late, see the outbox)."""
    return sorted(
        rows, key=lambda row: (row.job_id, KINDS.index(row.kind) if row.kind in KINDS else len(KINDS))
    )


def _requeue_due(job: Job, now: dt.datetime, grace: dt.timedelta) -> bool:
    """True for one caller per grace period: a copy queued less than ``grace`` ago may
    still be waiting in a backlog, and every pass (every minute) adding another would
    grow the queue by backlog x passes. Reapers on several machines race through a
    lightweight transaction on the job's ``requeued_at``."""
    last = aware_utc(job.requeued_at)
    if last is not None and last > now - grace:
        return False
    return records.job_requeue_mark(job, previous=job.requeued_at, now=now)


OUTCOME_MAILS = services.OUTCOME_MAILS


def _queue_lost_outcome_mail(job: Job | None) -> int:
    """A job that finished but whose worker died before its outcome mail was queued:
    queue it now (1), else nothing (0)."""
    kind = OUTCOME_MAILS.get(job.status) if job is not None else None
    if kind is None or not job.email:
        return 0
    if JobMail.objects.filter(job_id=job.id, generation=job.generation or 1, kind=kind).first() is not None:
        return 0
    email_enqueue(job, kind)
    return 1


def _mail_needing_sending(
    pending: MailPending, now: dt.datetime, grace: dt.timedelta
) -> JobMail | bool | None:
    """The outbox row of a mail nobody is sending (its sender's claim ran out, or it
    is still pending ``grace`` after it was due: queued, or its retry's time); None
    while it is in hand; False when it is done (its listing row is then deleted)."""
    mail = JobMail.objects.filter(
        job_id=pending.job_id, generation=pending.generation, kind=pending.kind
    ).first()
    if mail is None or mail.state in MailState.DONE:
        pending.delete()
        return False
    if mail.state == MailState.SENDING:
        claim = aware_utc(mail.claim_until)
        return mail if claim is None or claim < now else None
    queued = aware_utc(mail.queued_at)
    return mail if queued is None or queued < now - grace else None
