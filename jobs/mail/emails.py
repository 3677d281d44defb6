"""The job's emails: one small function each, three templates each.

``templates/emails/<kind>-subject.txt``, ``<kind>-body.txt`` and ``<kind>-body.html``.
Links in them are signed (see ``jobs.lib.links``). Every email carries a "never email me
again" link and the ``List-Unsubscribe`` headers of RFC 8058 (see ``jobs.mail.suppression``);
a recurring series' mails also a "stop these" link, which ``List-Unsubscribe`` names.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from jobs.lib import links
from jobs.lib.formatting import human_bytes, in_job_zone
from jobs.mail.suppression import is_suppressed, mail_allowed_today, unsubscribe_url
from jobs.models import Job, SeriesEvery, SeriesStatus
from jobs.store.records import download_expires_at
from jobs.store.series import repeat_word, rhythm_text, series_get, series_promise, stop_reason_text

KINDS = ("accepted", "started", "ready", "failed", "series_stopped")


def _context(job: Job) -> dict:
    run_at = job.run_at
    expires = download_expires_at(job)
    return {
        "job": job,
        "subject_text": job.subject,
        "run_at_local": in_job_zone(job, run_at),
        "status_url": links.status_url(job.id),
        "cancel_url": links.cancel_url(job.id),
        "resubmit_url": links.resubmit_url(job.id),
        "download_url": links.download_url(job.id, expires) if expires else None,
        "expires_local": in_job_zone(job, expires),
        "retention_minutes": settings.IMAGEDL_RETENTION_MINUTES,
        "size_text": human_bytes(job.archive_bytes or 0),
        "base_url": settings.IMAGEDL_BASE_URL,
        "unsubscribe_url": unsubscribe_url(job.email) if job.email else None,
        **_series_context(job),
    }


def _series_context(job: Job) -> dict:
    """A series' run: its page, its "stop these" link (also the List-Unsubscribe
    target), its rhythm and, once stopped, why."""
    series = series_get(job.series_id) if job.series_id else None
    if series is None:
        return {"series": None, "stop_url": None, "confirm_url": None}
    pending = series.status == SeriesStatus.PENDING
    return {
        "series": series,
        # Double opt-in: nothing runs until the mailbox's owner confirms.
        "confirm_url": links.series_confirm_url(series.id) if pending else None,
        "confirm_hours": settings.IMAGEDL_SERIES_CONFIRM_HOURS,
        "series_url": links.series_url(series.id, SeriesEvery.DAYS.get(series.every, 7)),
        "stop_url": links.series_stop_url(series.id),
        "series_rhythm": rhythm_text(series),
        "series_promise": series_promise(series),
        "series_word": repeat_word(series),
        "stop_reason": stop_reason_text(series),
    }


def email_build(job: Job, kind: str) -> EmailMultiAlternatives:
    if kind not in KINDS:
        raise ValueError(f"unknown email {kind!r}")
    if not job.email:
        raise ValueError("the job has no email address (purged?)")
    context = _context(job)
    subject = " ".join(render_to_string(f"emails/{kind}-subject.txt", context).split())
    text = render_to_string(f"emails/{kind}-body.txt", context)
    html = render_to_string(f"emails/{kind}-body.html", context)
    headers = {
        # RFC 8058: a mail client's one-click unsubscribe is a POST to this URL.
        # A series' mails point at its "stop these" link instead (one-click POST too).
        "List-Unsubscribe": f"<{context['stop_url'] or context['unsubscribe_url']}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [job.email], headers=headers)
    message.attach_alternative(html, "text/html")
    return message


def email_blocked(job: Job, *, first_try: bool) -> str | None:
    """Why this email must not go out, or None: the recipient asked never to be
    emailed again, or has had IMAGEDL_MAILS_PER_RECIPIENT_PER_DAY mails today (the
    first try of each email counts)."""
    if is_suppressed(job.email):
        return "suppressed"
    if first_try and not mail_allowed_today(job.email):
        return "daily_cap"
    return None


def email_deliver(job: Job, kind: str) -> None:
    """Send now; raises on SMTP errors (the email task retries)."""
    email_build(job, kind).send(fail_silently=False)
