"""What several public pages share: status words and the page for a link that does not work."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from jobs.lib.formatting import duration_words
from jobs.models import JobStatus

STATUS_WORDS = {
    JobStatus.SCHEDULED: "Scheduled",
    JobStatus.RUNNING: "Running",
    JobStatus.DONE: "Ready to download",
    JobStatus.FAILED: "Failed",
    JobStatus.CANCELLED: "Cancelled",
    JobStatus.EXPIRED: "Expired",
}


def link_problem_page(
    request: HttpRequest, reason: str, status: int = 410, again_url: str | None = None
) -> HttpResponse:
    """The calm page for a link that does not work: expired, invalid, gone, cancelled
    or not ready yet (404 for an invalid one, else ``status``); ``again_url`` runs the
    same search again."""
    titles = {
        "expired": "This link has expired",
        "invalid": "This link is not valid",
        "gone": "These images have been deleted",
        "cancelled": "This job was cancelled",
        "not_ready": "The images are not ready yet",
    }
    return render(
        request,
        "jobs/link_problem.html",
        {
            "title": titles.get(reason, "This link does not work"),
            "reason": reason,
            "window": duration_words(settings.IMAGEDL_RETENTION_MINUTES),
            "again_url": again_url,
        },
        status=404 if reason == "invalid" else status,
    )
