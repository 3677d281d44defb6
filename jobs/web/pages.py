"""What several public pages share: status words and the page for a link that does not work."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from jobs.models import JobStatus

STATUS_WORDS = {
    JobStatus.SCHEDULED: "Scheduled",
    JobStatus.RUNNING: "Running",
    JobStatus.DONE: "Ready to download",
    JobStatus.FAILED: "Failed",
    JobStatus.CANCELLED: "Cancelled",
    JobStatus.EXPIRED: "Expired",
}


def link_problem_page(request: HttpRequest, reason: str, status: int = 410) -> HttpResponse:
    """The calm page for a link that does not work: expired, invalid, gone, cancelled
    or not ready yet (404 for an invalid one, else ``status``)."""
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
        {"title": titles.get(reason, "This link does not work"), "reason": reason},
        status=404 if reason == "invalid" else status,
    )
