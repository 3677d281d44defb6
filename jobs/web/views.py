"""The public pages: the form, the submitted page, the status page and its JSON, the
download, cancel and resubmit. Every job URL carries a signed token (jobs.lib.links)."""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import io
import json
import logging
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

from cassandra.util import datetime_from_uuid1
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from downloader.addresses import is_loopback
from downloader.choices import MAX_COUNT, PACK_DEFAULT
from jobs.core import services, storage
from jobs.lib import links
from jobs.lib.formatting import duration_words, human_bytes, in_job_zone
from jobs.lib.mailboxes import mailbox_key
from jobs.lib.ratelimit import allow, client_address, client_key, configured_rate
from jobs.lib.recent import RecentAnswers
from jobs.lib.timezones import is_valid_zone
from jobs.lib.utc import aware_utc
from jobs.mail.suppression import suppression_add, unsubscribe_token_read
from jobs.models import Job, JobImage, JobStatus
from jobs.series.limits import series_limit_reached
from jobs.series.services import series_submit
from jobs.store import records
from jobs.store.events import job_events
from jobs.store.series import series_get, series_promise
from jobs.store.webhooks import deliveries_of_job
from jobs.web.context_processors import site
from jobs.web.estimate import estimate_model, estimate_seconds
from jobs.web.forms import REPEAT_NEVER, START_NOW, JobForm, browser_messages
from jobs.web.health import health_report
from jobs.web.pages import STATUS_WORDS, link_problem_page
from jobs.web.shared_render import shared_html
from jobs.web.wording import events_for_people, time_left_text, why_fewer

logger = logging.getLogger(__name__)
_ESTIMATE_MODEL = json.dumps(estimate_model())


_recent_status = RecentAnswers(max_age=1.0)


class LinkProblem(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _client_ip(request: HttpRequest) -> str:
    return client_address(request)


def _job_from(token: str, purpose: str) -> Job:
    try:
        job_id = links.token_read(token, purpose)
    except links.LinkError as exc:
        raise LinkProblem(exc.reason) from None
    job = records.job_get(job_id)
    if job is None:
        raise LinkProblem("invalid")
    return job


def job_link(purpose: str) -> Callable:
    """View decorator: the signed token in the URL becomes the job it names (the view
    gets ``job`` and ``token``); a forged, expired or dangling link gets its page."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def with_job(request: HttpRequest, token: str, *args: object, **kwargs: object) -> HttpResponse:
            try:
                job = _job_from(token, purpose)
            except LinkProblem as exc:
                return link_problem_page(
                    request, exc.reason, again_url=_again_url(token, purpose, exc.reason)
                )
            return view(request, job, token, *args, **kwargs)

        return with_job

    return decorate


def _again_url(token: str, purpose: str, reason: str) -> str | None:
    """For an expired download link: the job's "run the same search again" link."""
    if reason != "expired" or purpose != "download":
        return None
    job_id = links.token_read_lapsed(token, purpose)
    return reverse("jobs:resubmit", args=[links.token_make(job_id, "resubmit")]) if job_id else None


def _too_many(request: HttpRequest, scope: str) -> HttpResponse:
    """The 429 page, telling clients when the current window ends."""
    _, window = configured_rate(scope)
    response = render(request, "429.html", status=429)
    if window:
        response["Retry-After"] = str(window - int(time.time()) % window)
    return response


@require_http_methods(["GET", "POST"])
def home(request: HttpRequest, initial: dict | None = None) -> HttpResponse:
    if request.method == "POST":
        return _home_post(request)
    if not initial:
        return _home_blank(request)
    zone = initial.get("time_zone") or "UTC"
    today = timezone.now().astimezone(ZoneInfo(zone if is_valid_zone(zone) else "UTC")).date()
    form = JobForm(initial={"run_date": today, "start": START_NOW, **initial})
    return _home_page(request, form)


def _home_blank(request: HttpRequest) -> HttpResponse:
    """The blank form, the same for everyone but its CSRF token: rendered once a day
    per process (``jobs.web.shared_render``)."""
    today = timezone.now().astimezone(dt.UTC).date()

    def render_blank(extra: dict) -> str:
        form = JobForm(initial={"run_date": today, "start": START_NOW})
        context = {**site(request), **_home_context(form), **extra}
        return render_to_string("jobs/home.html", context)

    return HttpResponse(shared_html(request, "home", today, render_blank))


def _home_page(request: HttpRequest, form: JobForm, status: int = 200) -> HttpResponse:
    return render(request, "jobs/home.html", _home_context(form), status=status)


def _home_context(form: JobForm) -> dict:
    return {
        "form": form,
        "estimate_model": _ESTIMATE_MODEL,
        "messages_json": json.dumps(browser_messages()),
        "max_days": settings.IMAGEDL_MAX_SCHEDULE_DAYS,
        "max_runs": settings.IMAGEDL_SERIES_MAX_RUNS,
        "window": duration_words(settings.IMAGEDL_RETENTION_MINUTES),
        "start_now": form.is_start_now(),
        "filters_set": form.filters_set(),
        "errors": form.error_summary() if form.is_bound else [],
    }


def _home_post(request: HttpRequest) -> HttpResponse:
    # Every post counts against the address (before the form's DNS lookups);
    # only valid ones count against the email.
    client = client_key(_client_ip(request))
    if not allow("ip", client, configured_rate("ip")):
        return _too_many(request, "ip")
    form = JobForm(request.POST)
    if not form.is_valid():
        return _home_page(request, form)
    data = form.cleaned_data
    if not allow("email", mailbox_key(data["email"]), configured_rate("email")):
        return _too_many(request, "email")
    if data["repeat"] == REPEAT_NEVER:
        job = services.job_submit(**form.request_fields())
    else:
        refused = series_limit_reached(data["email"], client)
        if refused is not None:  # a series costs runs for months: bounded per mailbox, client, site
            form.add_error("repeat", refused)
            return _home_page(request, form, status=400)
        job = series_submit(
            every=data["repeat"], client=client, last_day=data.get("repeat_until"), **form.request_fields()
        )
    return redirect("jobs:submitted", token=links.token_make(job.id, "status"))


THUMBS_SHOWN = services.PREVIEWS_KEPT  # the runs store previews of these only


def _job_context(job: Job, token: str) -> dict:
    expires = records.download_expires_at(job)
    events = job_events(job.id, limit=300)
    done = job.status == JobStatus.DONE
    download_token = links.token_make(job.id, "download", expires) if expires and done else None
    estimate = estimate_seconds(job.requested_count)
    thumbs = _thumbs(job)
    return {
        "job": job,
        "token": token,
        "status_word": STATUS_WORDS.get(job.status, job.status),
        "run_at_local": in_job_zone(job, job.run_at),
        "started_local": in_job_zone(job, job.started_at),
        "finished_local": in_job_zone(job, job.finished_at),
        "expires_local": in_job_zone(job, expires),
        "size_text": human_bytes(job.archive_bytes or 0),
        "download_url": reverse("jobs:download", args=[download_token]) if download_token else None,
        "resubmit_url": reverse("jobs:resubmit", args=[links.token_make(job.id, "resubmit")]),
        "events": [
            {"at": in_job_zone(job, datetime_from_uuid1(e.at)), "message": words, "level": e.level}
            for e, words in events_for_people(events)
        ],
        "why_fewer": why_fewer(job, events),
        "time_left": time_left_text(job, estimate, timezone.now()),
        "percent": _percent(job),
        "can_cancel": job.status in JobStatus.ACTIVE,
        "at_once": not job.held and services.starts_at_once(job, job.run_at),
        "estimate": estimate,
        "window": duration_words(settings.IMAGEDL_RETENTION_MINUTES),
        # (a week's lifetime, the longest period: this page does not read the series)
        "series_url": reverse("jobs:series", args=[links.series_page_token(job.series_id, period_days=7)])
        if job.series_id
        else None,
        "thumbs": [
            {
                "n": n,
                "src": reverse("jobs:thumbnail", args=[token, n]),
                "full": reverse("jobs:image", args=[download_token, n]) if download_token else None,
            }
            for n in thumbs[:THUMBS_SHOWN]
        ],
        "thumbs_total": len(thumbs),
    }


def _thumbs(job: Job) -> list[int]:
    """The numbers of the images the job's run kept so far (in the zip's order)."""
    if job.status not in (JobStatus.RUNNING, JobStatus.DONE) or job.run_id is None:
        return []
    rows = JobImage.objects.filter(job_id=job.id, run_id=job.run_id).limit(MAX_COUNT + 50)
    positions = [row.position for row in rows if row.sha256]
    return list(range(1, len(positions) + 1))


def _percent(job: Job) -> int:
    if job.status == JobStatus.DONE:
        return 100
    return int(100 * min(job.downloaded_count or 0, job.requested_count) / max(job.requested_count, 1))


@never_cache
@require_GET
@job_link("status")
def submitted(request: HttpRequest, job: Job, token: str) -> HttpResponse:
    context = _job_context(job, token)
    series = series_get(job.series_id) if job.series_id else None
    context["promise"] = series_promise(series) if series is not None else ""
    context["status_url"] = reverse("jobs:status", args=[token])
    context["status_link"] = links.absolute(context["status_url"])
    return render(request, "jobs/submitted.html", context)


@never_cache
@require_GET
@job_link("status")
def status(request: HttpRequest, job: Job, token: str) -> HttpResponse:
    context = {**_job_context(job, token), "webhooks": deliveries_of_job(job.id)}
    return render(request, "jobs/status.html", context)


@never_cache
@require_GET
def status_json(request: HttpRequest, token: str) -> JsonResponse:
    try:
        job_id = links.token_read(token, "status")
    except links.LinkError as exc:
        return JsonResponse({"error": exc.reason}, status=404 if exc.reason == "invalid" else 410)

    # Pages poll this every 1.5 s: a second-old answer is as good, and it spares
    # Cassandra two reads per poll when many people watch. Kept encoded in this
    # process's memory, so a repeated poll costs no I/O and no JSON encoding.
    def fresh() -> bytes | None:
        job = records.job_get(job_id)
        if job is None:
            return None
        return json.dumps(_status_payload(job, token), cls=DjangoJSONEncoder).encode()

    body = _recent_status.get(job_id.hex, fresh)
    if body is None:
        return JsonResponse({"error": "invalid"}, status=404)
    return HttpResponse(body, content_type="application/json")


def _status_payload(job: Job, token: str) -> dict:
    context = _job_context(job, token)
    return {
        "status": job.status,
        "status_text": context["status_word"],
        "requested": job.requested_count,
        "found": job.found_count or 0,
        "downloaded": job.downloaded_count or 0,
        "rejected": job.rejected_count or 0,
        "percent": context["percent"],
        "archive_bytes": job.archive_bytes or 0,
        "size_text": context["size_text"],
        "run_at": aware_utc(job.run_at).isoformat(),
        "download_url": context["download_url"],
        "expires_at": records.download_expires_at(job).isoformat() if context["download_url"] else None,
        "error": job.error,
        "can_cancel": context["can_cancel"],
        "time_left": context["time_left"],
        "why_fewer": context["why_fewer"],
        "thumbs": context["thumbs"],
        "thumbs_total": context["thumbs_total"],
        "events": [
            {"at": e["at"].isoformat(), "message": e["message"], "level": e["level"]}
            for e in context["events"]
        ],
    }


@require_http_methods(["GET", "POST"])
@job_link("status")
def cancel(request: HttpRequest, job: Job, token: str) -> HttpResponse:
    """POST cancels; GET (the emailed link) shows the status page with its cancel button,
    so a mail scanner following links cannot cancel anything."""
    if request.method == "GET":
        return redirect(reverse("jobs:status", args=[token]) + "#cancel")
    services.job_cancel(job, by="user")
    return redirect("jobs:status", token=token)


@require_GET
@job_link("download")
def download(request: HttpRequest, job: Job, token: str) -> HttpResponse:
    again = reverse("jobs:resubmit", args=[links.token_make(job.id, "resubmit")])
    if job.purged_at:
        return link_problem_page(request, "gone", again_url=again)  # 410: gone for good
    if job.status == JobStatus.CANCELLED:
        return link_problem_page(request, "cancelled")
    if job.status != JobStatus.DONE:
        return link_problem_page(request, "not_ready", status=409)
    if not job.archive_path or not storage.exists(job.archive_path):
        return link_problem_page(request, "gone", again_url=again)
    from downloader.archive import file_stem  # not at import: the web needs it only here

    return storage.download_response(job.archive_path, f"{file_stem(job.subject)}.zip")


def _kept_row(job: Job, number: int) -> JobImage | None:
    """The n-th image the job's run kept, in the zip's order."""
    if job.run_id is None or not 1 <= number <= MAX_COUNT + 50:
        return None
    rows = [
        r for r in JobImage.objects.filter(job_id=job.id, run_id=job.run_id).limit(MAX_COUNT + 50) if r.sha256
    ]
    return rows[number - 1] if number <= len(rows) else None


@require_GET
def thumbnail(request: HttpRequest, token: str, number: int) -> HttpResponse:
    """The preview of the n-th kept image, as the worker stored it (while the job runs,
    too): the web never decodes an image."""
    try:
        job = _job_from(token, "status")
    except LinkProblem:
        raise Http404 from None
    if job.status not in (JobStatus.RUNNING, JobStatus.DONE):
        raise Http404
    row = _kept_row(job, number)
    data = storage.preview_bytes(services.preview_path(job.id, row.sha256)) if row is not None else None
    if data is None:
        raise Http404
    response = FileResponse(io.BytesIO(data), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400, immutable"
    return response


@require_GET
@job_link("download")
def image(request: HttpRequest, job: Job, token: str, number: int) -> HttpResponse:
    """The n-th delivered image at full size, from the zip, through the download's own
    signed, expiring link."""
    if job.status != JobStatus.DONE or job.purged_at or not job.archive_path:
        return link_problem_page(request, "gone")
    found = storage.archive_image(job.archive_path, number)
    if found is None:
        raise Http404
    name, data = found
    response = HttpResponse(
        data, content_type=IMAGE_TYPES.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")
    )
    response["Content-Disposition"] = f'inline; filename="{name}"'
    response["Cache-Control"] = "private, no-store"
    return response


IMAGE_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
}


@require_GET
@job_link("resubmit")
def resubmit(request: HttpRequest, job: Job, token: str) -> HttpResponse:
    """The form filled in as the job was, except the address. Once the job's personal
    data is deleted (its search words or page address too), the rest of it."""
    if job.requested_count is None:
        return link_problem_page(request, "gone")
    return home(
        request,
        initial={
            "query": job.query or "",
            "page_url": job.page_url or "",
            "count": job.requested_count,
            # Not the address: whoever holds the link (a forwarded mail, a shared
            # screen) must not learn it; the form asks for it again.
            "time_zone": job.time_zone,
            "formats": sorted(job.formats or []),
            "min_width": job.min_width,
            "min_height": job.min_height,
            "engine": job.engine,
            "safe_search": job.safe_search,
            "pack": job.pack or PACK_DEFAULT,
            **{f"filter_{kind}": value for kind, value in job.filters.chosen().items()},
        },
    )


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Up or down for everyone; versions and error texts only for a caller with
    ``IMAGEDL_HEALTHZ_TOKEN`` in an ``X-Healthz-Token`` header, or for the machine
    itself (a loopback client) while no proxy is in front. Behind a proxy on the same
    host every request comes from loopback, so then only the token counts."""
    report = health_report()
    if not report["ok"]:
        logger.warning(
            "healthz: %s", {k: c.get("error") for k, c in report["components"].items() if not c["ok"]}
        )
    if not _healthz_trusted(request):
        report = {
            "ok": report["ok"],
            "components": {name: {"ok": c["ok"]} for name, c in report["components"].items()},
        }
    return JsonResponse(report, status=200 if report["ok"] else 503)


def _healthz_trusted(request: HttpRequest) -> bool:
    token = settings.IMAGEDL_HEALTHZ_TOKEN
    if token and hmac.compare_digest(request.headers.get("X-Healthz-Token", "").encode(), token.encode()):
        return True
    return not settings.IMAGEDL_CLIENT_IP_HEADER and is_loopback(request.META.get("REMOTE_ADDR", ""))


@csrf_exempt  # RFC 8058: mail providers POST here without a form; the signed token is the proof
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a page with a button (mail scanners follow links); POST, from that
    button or a mail client's one-click unsubscribe, puts the address on the list."""
    hashed = unsubscribe_token_read(token)
    if hashed is None:
        return link_problem_page(request, "invalid")
    done = request.method == "POST"
    if done:
        suppression_add(address_hash=hashed)
    return render(request, "jobs/unsubscribe.html", {"done": done, "token": token})


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "403.html", status=403)
