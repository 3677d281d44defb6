"""Public views of the jobs app (preliminary: the web work replaces the pages)."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from jobs import links, records
from jobs.health import health_report
from jobs.models import JobStatus


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "jobs/home.html")


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report = health_report()
    return JsonResponse(report, status=200 if report["ok"] else 503)


def _job_from(token: str, purpose: str):
    try:
        job_id = links.read_token(token, purpose)
    except links.LinkError as exc:
        raise Http404(f"link {exc.reason}") from None
    job = records.get_job(job_id)
    if job is None:
        raise Http404("no such job")
    return job


@never_cache
@require_GET
def status(request: HttpRequest, token: str) -> HttpResponse:
    job = _job_from(token, "status")
    return JsonResponse({"status": job.status})


@never_cache
@require_GET
def status_json(request: HttpRequest, token: str) -> JsonResponse:
    job = _job_from(token, "status")
    return JsonResponse(
        {
            "status": job.status,
            "requested": job.requested_count,
            "found": job.found_count,
            "downloaded": job.downloaded_count,
            "rejected": job.rejected_count,
            "archive_bytes": job.archive_bytes,
        }
    )


def cancel(request: HttpRequest, token: str) -> HttpResponse:
    from jobs.services import job_cancel

    job = _job_from(token, "status")
    if request.method == "POST":
        job_cancel(job)
    return JsonResponse({"status": job.status})


@require_GET
def download(request: HttpRequest, token: str) -> FileResponse:
    job = _job_from(token, "download")
    if job.status != JobStatus.DONE or not job.archive_path or not default_storage.exists(job.archive_path):
        raise Http404("archive gone")
    name = f"{slugify(job.subject)[:60] or 'images'}.zip"
    return FileResponse(default_storage.open(job.archive_path, "rb"), as_attachment=True, filename=name)


@require_GET
def resubmit(request: HttpRequest, token: str) -> HttpResponse:
    job = _job_from(token, "resubmit")
    return JsonResponse({"query": job.query, "count": job.requested_count})
