"""What the public pages say about a job, in people's words: its events (without the
engines' and the code's words: the admin keeps those), why it found more than it kept,
and the time left while it runs."""

from __future__ import annotations

import datetime as dt
import re

from jobs.lib.formatting import human_bytes
from jobs.lib.utc import aware_utc
from jobs.models import Job, JobEvent, JobStatus

# Why an image was left out, by the collector's reason.
LEFT_OUT = {
    "duplicate": "copies of another image",
    "near_duplicate": "near copies of another image",
    "already_delivered": "sent to you before",
    "too_small": "smaller than you asked",
    "format_not_allowed": "in a format you did not tick",
    "filter_mismatch": "not matching your filters",
    "animated": "not matching your filters",
    "not_an_image": "not images",
    "too_many_pixels": "too large to check",
    "too_large": "too large to download",
    "robots": "not allowed by their site",
    "noai": "not allowed by their site",
}
ELSEWHERE = "could not be downloaded"  # the fetch failures (timeouts, refusals, errors)

MAILS = {
    "accepted": "We emailed you that the job is scheduled",
    "started": "We emailed you that the job has started",
    "ready": "We emailed you the download link",
    "failed": "We emailed you why it could not finish",
    "series_stopped": "We emailed you that the repeats have stopped",
}
_PACKED = re.compile(r"Packed (\d+) images \((\d+) bytes\)")


def left_out_reason(reason: str) -> str:
    return LEFT_OUT.get(reason, ELSEWHERE)


def event_words(event: JobEvent) -> str | None:
    """An event as the status page says it, or None for one only operators need."""
    data = event.data or {}
    kind = event.kind
    if kind == "scheduled":
        return "We received your request"
    if kind == "started":
        return (
            "We started collecting"
            if data.get("attempt") in (None, "1")
            else "We started again after a break"
        )
    if kind == "engine_started":
        return "Searching for images"
    if kind == "candidates_found":
        return f"Found {data.get('found', '')} images".replace("  ", " ")
    if kind == "rejected":
        return f"Left out {data.get('count', '')}: {left_out_reason(str(data.get('reason', '')))}"
    if kind == "kept":
        return f"Kept {data.get('kept', '')} images"
    if kind == "archive_written":
        packed = _PACKED.search(event.message or "")
        return (
            f"Packed them into one zip of {human_bytes(int(packed.group(2)))}"
            if packed
            else "Packed them into one zip"
        )
    if kind == "done":
        return "Ready to download"
    if kind == "email_sent":
        return MAILS.get(str(data.get("email", "")))
    if kind in ("cancelled", "failed"):
        return event.message
    return None


def events_for_people(events: list[JobEvent]) -> list[tuple[JobEvent, str]]:
    """The events worth showing, each with its words, a repeat of the same words once."""
    shown: list[tuple[JobEvent, str]] = []
    for event in events:
        words = event_words(event)
        if words and (not shown or shown[-1][1] != words):
            shown.append((event, words))
    return shown


def why_fewer(job: Job, events: list[JobEvent]) -> list[str]:
    """Why it found more than it kept: each reason for leaving images out, and the
    candidates it did not need once it had enough."""
    found, kept = job.found_count or 0, job.downloaded_count or 0
    reasons: dict[str, int] = {}
    for event in events:
        if event.kind == "rejected":
            words = left_out_reason(str((event.data or {}).get("reason", "")))
            reasons[words] = reasons.get(words, 0) + int((event.data or {}).get("count", 0) or 0)
    lines = [f"{count} {words}" for words, count in reasons.items() if count]
    unused = found - kept - max(job.rejected_count or 0, sum(reasons.values()))
    if job.status == JobStatus.DONE and unused > 0 and kept >= job.requested_count:
        lines.append(f"{unused} not needed: we stopped once we had {kept}")
    return lines


def time_left_text(job: Job, estimate: int, now: dt.datetime) -> str:
    """About how long a running job still takes: from its pace so far once it has
    kept a few images, else from the estimate."""
    if job.status != JobStatus.RUNNING:
        return ""
    started = aware_utc(job.started_at) or now
    elapsed = max((now - started).total_seconds(), 1)
    kept, wanted = job.downloaded_count or 0, job.requested_count or 1
    left = elapsed / kept * (wanted - kept) if kept >= 3 else max(estimate - elapsed, 5)
    if left < 60:
        return f"About {max(5, round(left / 5) * 5)} seconds left"
    return f"About {round(left / 60)} minute{'s' if round(left / 60) != 1 else ''} left"
