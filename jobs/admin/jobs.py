"""A Django admin that works on the Cassandra job models.

The stock changelist, filters, search and bulk delete cannot run on
django-cassandra-engine models, so the Job admin serves its own staff-only views:
a newest-first list paged by cursor (never a table scan), filters by status and day,
an "overdue" filter and flag (``jobs.core.overview``), search by id (direct) or exact
email/query (over a bounded recent window, and the page says so), a read-only detail
page with the event log and images, and the cancel / retry / purge actions through
jobs.core.services, each written to the admin log. The admin index opens with the jobs
in hand: counts by state, the overdue ones and the oldest job waiting past its time.
"""

from __future__ import annotations

import datetime as dt
import uuid

from cassandra.util import datetime_from_uuid1
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from jobs.admin.changes import log_change
from jobs.core import services
from jobs.core.overview import job_overdue, jobs_overview, jobs_overview_cached
from jobs.lib import links
from jobs.lib.formatting import human_bytes
from jobs.lib.utc import aware_utc
from jobs.models import Job, JobStatus
from jobs.store import records
from jobs.store.events import job_events

PAGE_SIZE = 50
SEARCH_WINDOW = 5000  # newest jobs scanned for an exact email/query match
ACTIONS = {"cancel": "Cancel", "retry": "Retry", "purge": "Purge now"}
OVERDUE_NOTE = (
    "Overdue jobs: past their run time by more than the reaper's grace, or running on a lease that ran out."
)


def job_action_apply(request: HttpRequest, action: str, job: Job) -> str:
    """Run one admin action through the services; returns what happened, in words."""
    who = f"operator:{request.user.get_username()}"
    if action == "cancel":
        done = services.job_cancel(job, by=who)
        result = "cancelled" if done else "not cancelled (already finished)"
    elif action == "retry":
        try:
            services.job_retry(job, by=who)
            result = "queued again"
        except services.JobStateError as exc:
            result = f"not retried ({exc})"
    elif action == "purge":
        services.job_purge(job, by=who)
        result = "purged"
    else:
        raise PermissionDenied("unknown action")
    log_change(request, job, f"{ACTIONS[action]}: {result}")
    return result


class JobAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # "purge now" keeps an anonymous record instead

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.list_view), name="jobs_job_changelist"),
            path("action/", wrap(self.action_view), name="jobs_job_action"),
            path("<str:object_id>/change/", wrap(self.detail_view), name="jobs_job_change"),
            path("<str:object_id>/", wrap(self.detail_redirect)),
        ]

    def _require_view(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied

    # --- the list -------------------------------------------------------------------

    def list_view(self, request: HttpRequest) -> HttpResponse:
        self._require_view(request)
        status = request.GET.get("status") or None
        if status not in JobStatus.ALL:
            status = None
        day = parse_date(request.GET.get("day", "") or "") if request.GET.get("day") else None
        search = (request.GET.get("q") or "").strip()
        overdue = request.GET.get("overdue") == "1"
        cursor = records.Cursor.decode(request.GET.get("after", "")) if request.GET.get("after") else None
        search_note = ""
        next_cursor = None
        if search:
            jobs, search_note = self._search(search)
        elif overdue:
            jobs = [job for job in map(records.job_get, jobs_overview().overdue) if job is not None]
            search_note = OVERDUE_NOTE
        else:
            page = records.jobs_list_newest_first(PAGE_SIZE, cursor, status=status, day=day)
            jobs, next_cursor = page.jobs, page.next_cursor
        params = {
            k: v for k, v in {"status": status or "", "day": day.isoformat() if day else ""}.items() if v
        }
        now = timezone.now()
        context = {
            **self.admin_site.each_context(request),
            "title": "Jobs",
            "opts": Job._meta,
            "rows": [self._row(job, now) for job in jobs],
            "statuses": JobStatus.ALL,
            "overdue": overdue,
            "status": status,
            "day": day,
            "search": search,
            "search_note": search_note,
            "next_url": "?"
            + "&".join([f"{k}={v}" for k, v in params.items()] + [f"after={next_cursor.encode()}"])
            if next_cursor
            else None,
            "first_url": "?" + "&".join(f"{k}={v}" for k, v in params.items()) if cursor else None,
            "actions": ACTIONS,
        }
        return render(request, "admin/jobs/job_list.html", context)

    def _search(self, text: str) -> tuple[list[Job], str]:
        try:
            job = records.job_get(uuid.UUID(text))
            return ([job] if job else []), "Searched by job id."
        except ValueError:
            pass
        found, cursor, scanned = [], None, 0
        needle = text.lower()
        while scanned < SEARCH_WINDOW:
            page = records.jobs_list_newest_first(500, cursor)
            scanned += len(page.jobs)
            found += [j for j in page.jobs if needle in ((j.email or "").lower(), (j.query or "").lower())]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        note = (
            f"Exact match on email or query among the newest {SEARCH_WINDOW} jobs (Cassandra cannot search "
            "inside text without scanning the table); a job id finds any job."
        )
        return found, note

    def _row(self, job: Job, now: dt.datetime) -> dict:
        return {
            "job": job,
            "overdue": job.status in JobStatus.ACTIVE and job_overdue(job, now),
            "url": reverse("admin:jobs_job_change", args=[job.id]),
            "size": human_bytes(job.archive_bytes or 0) if job.archive_bytes else "",
        }

    # --- one job ----------------------------------------------------------------------

    def detail_redirect(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[object_id]))

    def detail_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._require_view(request)
        job = records.job_get(object_id)
        if job is None:
            messages.error(request, "No job with that id.")
            return HttpResponseRedirect(reverse("admin:jobs_job_changelist"))
        if request.method == "POST" and request.POST.get("run_at"):
            if not self.has_change_permission(request):
                raise PermissionDenied
            run_at = parse_datetime(request.POST["run_at"])
            if run_at is None:
                messages.error(request, "Enter the run time as YYYY-MM-DD HH:MM (UTC).")
            else:
                run_at = aware_utc(run_at)  # the form's time is UTC
                try:
                    services.job_reschedule(job, run_at, by=f"operator:{request.user.get_username()}")
                    log_change(request, job, f"Run time moved to {run_at.isoformat()}")
                    messages.success(request, "Run time changed.")
                except services.JobStateError as exc:
                    messages.error(request, str(exc))
            return HttpResponseRedirect(request.path)
        fields = [(name, getattr(job, name)) for name in Job._columns]
        token = links.token_make(job.id, "status")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Job {job.id}",
            "opts": Job._meta,
            "job": job,
            "fields": fields,
            "events": [(datetime_from_uuid1(e.at), e) for e in job_events(job.id)],
            "images": records.job_images(job.id, limit=500),
            "thumb_token": token if job.status == JobStatus.DONE and job.archive_path else None,
            "previews_kept": services.PREVIEWS_KEPT,
            "status_url": reverse("jobs:status", args=[token]),
            "task_name": f"job-{job.id}",
            "actions": ACTIONS,
            "can_change": self.has_change_permission(request),
        }
        return render(request, "admin/jobs/job_detail.html", context)

    # --- actions ------------------------------------------------------------------------

    def action_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:jobs_job_changelist"))
        if not self.has_change_permission(request):
            raise PermissionDenied
        action = request.POST.get("action", "")
        if action not in ACTIONS:
            messages.error(request, "Choose an action.")
            return HttpResponseRedirect(request.POST.get("next") or reverse("admin:jobs_job_changelist"))
        results = []
        for raw in request.POST.getlist("ids"):
            job = records.job_get(raw)
            if job is not None:
                results.append(f"{str(job.id)[:8]}: {job_action_apply(request, action, job)}")
        if results:
            messages.success(request, f"{ACTIONS[action]} — " + "; ".join(results))
        else:
            messages.warning(request, "No jobs were selected.")
        return HttpResponseRedirect(request.POST.get("next") or reverse("admin:jobs_job_changelist"))


def jobs_at_a_glance() -> dict:
    """The admin index's summary of the jobs in hand (read at most every 15 s)."""
    try:
        overview = jobs_overview_cached()
    except Exception as exc:  # Cassandra down: the rest of the admin still works
        return {"error": type(exc).__name__}
    oldest = overview.oldest_waiting
    return {
        "counts": overview.counts,
        "overdue": len(overview.overdue),
        "oldest": oldest,
        "oldest_url": reverse("admin:jobs_job_change", args=[oldest]) if oldest else "",
        "oldest_minutes": round(overview.oldest_waiting_seconds / 60, 1),
        "at": dt.datetime.fromtimestamp(overview.at, dt.UTC),
    }


_stock_index = admin.site.index


def admin_index(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """Django's admin index with the jobs at a glance on top (templates/admin/index.html)."""
    return _stock_index(request, {**(extra_context or {}), "jobs_at_a_glance": jobs_at_a_glance()})


admin.site.index = admin_index
admin.site.register(Job, JobAdmin)
admin.site.site_header = "imagedl operations"
admin.site.site_title = "imagedl admin"
