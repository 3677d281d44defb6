"""A recurring series' public pages: its status page, its "stop these" link and its
confirmation link.

Each URL carries a signed token naming the series and what it is for
(``jobs.lib.links.series_token_make``), valid while the series' data is kept. The stop
URL is also every series mail's ``List-Unsubscribe`` target: a GET shows a page with
one Stop button and nothing of the series (mail scanners follow links, and a stop
token opens nothing else), a POST stops, from that button or a mail client's RFC 8058
one-click. The confirmation URL (double opt-in) shows one button on a GET; only its
POST confirms.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from jobs.lib import links
from jobs.lib.formatting import in_zone
from jobs.models import JobStatus, Series, SeriesEvery
from jobs.series import services as recurring
from jobs.store import records
from jobs.store.series import (
    repeat_word,
    rhythm_text,
    series_get,
    series_promise,
    series_runs,
    stop_reason_text,
)
from jobs.web.pages import STATUS_WORDS, link_problem_page


def _series_from(token: str, purpose: str) -> Series | str:
    """The series a token for ``purpose`` names, or why not ("invalid", "expired")."""
    try:
        series = series_get(links.series_token_read(token, purpose))
    except links.LinkError as exc:
        return exc.reason
    return series if series is not None else "invalid"


def _runs(series: Series) -> list[dict]:
    rows = []
    for run, job in series_runs(series.id):
        expires = records.download_expires_at(job) if job is not None else None
        delivered = job is not None and job.status == JobStatus.DONE
        rows.append(
            {
                "number": run.run,
                "at": in_zone(series.time_zone, run.run_at),
                "status": STATUS_WORDS.get(job.status, job.status) if job is not None else "Deleted",
                "count": (job.downloaded_count or 0) if delivered else 0,
                "again": (job.already_delivered or 0) if job is not None else 0,
                "download_url": reverse("jobs:download", args=[links.token_make(job.id, "download", expires)])
                if delivered and job.archive_path and expires
                else None,
                "status_url": reverse("jobs:status", args=[links.token_make(job.id, "status")])
                if job is not None and job.email
                else None,
            }
        )
    return rows


@never_cache
@require_GET
def series_status(request: HttpRequest, token: str) -> HttpResponse:
    series = _series_from(token, "page")
    if isinstance(series, str):
        return link_problem_page(request, series)
    if series.purged_at is not None:
        return link_problem_page(request, "gone")
    context = {
        "series": series,
        "token": token,
        "rhythm": rhythm_text(series),
        "promise": series_promise(series),
        "stop_token": links.series_token_make(series.id, "stop"),
        "next_local": in_zone(series.time_zone, series.next_run_at) if series.is_active else None,
        "stop_reason": stop_reason_text(series) if not series.is_active else "",
        "runs": _runs(series),
        "retention_minutes": settings.IMAGEDL_RETENTION_MINUTES,
    }
    return render(request, "jobs/series.html", context)


@csrf_exempt  # RFC 8058: mail providers POST here without a form; the signed token is the proof
@never_cache
@require_http_methods(["GET", "POST"])
def series_stop(request: HttpRequest, token: str) -> HttpResponse:
    series = _series_from(token, "stop")
    if isinstance(series, str):
        return link_problem_page(request, series)
    if request.method == "POST" and series.purged_at is None:
        recurring.series_stop(series, reason="user", by="user")
        series = series_get(series.id) or series
    live = series.purged_at is None and series.status in recurring.LIVE
    context = {"token": token, "live": live, "series": series, "word": repeat_word(series)}
    if live:
        context["promise"] = series_promise(series)
    return render(request, "jobs/series_stop.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def series_confirm(request: HttpRequest, token: str) -> HttpResponse:
    series = _series_from(token, "confirm")
    if isinstance(series, str):
        return link_problem_page(request, series)
    if series.purged_at is not None:
        return link_problem_page(request, "gone")
    if request.method == "POST":
        recurring.series_confirm(series, by="user")
        page = links.series_page_token(series.id, SeriesEvery.DAYS.get(series.every, 7))
        return redirect("jobs:series", token=page)
    context = {
        "series": series,
        "token": token,
        "rhythm": rhythm_text(series),
        "promise": series_promise(series),
    }
    return render(request, "jobs/series_confirm.html", context)
