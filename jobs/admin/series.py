"""The admin pages of recurring series: a newest-first list (from the one small
``series_list`` partition, never a table scan), a detail page with its runs, and the
**Stop** and **Run now** actions through ``jobs.series``, each written to the admin log.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse

from jobs.admin.changes import log_change
from jobs.lib import links
from jobs.models import Series
from jobs.series import services as recurring
from jobs.store.series import rhythm_text, series_get, series_list, series_runs, stop_reason_text

ACTIONS = {"stop": "Stop", "run_now": "Run now"}


def series_action_apply(request: HttpRequest, action: str, series: Series) -> str:
    who = f"operator:{request.user.get_username()}"
    if action == "stop":
        done = recurring.series_stop(series, reason="operator", by=who)
        result = "stopped" if done else "not stopped (already stopped)"
    elif action == "run_now":
        result = recurring.series_run_now(series, by=who)
    else:
        raise PermissionDenied("unknown action")
    log_change(request, series, f"{ACTIONS[action]}: {result}")
    return result


class SeriesAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.list_view), name="jobs_series_changelist"),
            path("<str:object_id>/change/", wrap(self.detail_view), name="jobs_series_change"),
        ]

    def list_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Recurring series",
            "opts": Series._meta,
            "rows": [
                {"series": s, "url": reverse("admin:jobs_series_change", args=[s.id])} for s in series_list()
            ],
        }
        return render(request, "admin/jobs/series_list.html", context)

    def detail_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        series = series_get(object_id)
        if series is None:
            messages.error(request, "No series with that id.")
            return HttpResponseRedirect(reverse("admin:jobs_series_changelist"))
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            action = request.POST.get("action", "")
            if action not in ACTIONS:
                messages.error(request, "Choose an action.")
            else:
                messages.success(
                    request, f"{ACTIONS[action]}: {series_action_apply(request, action, series)}"
                )
            return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Series {series.id}",
            "opts": Series._meta,
            "series": series,
            "fields": [(name, getattr(series, name)) for name in Series._columns],
            "rhythm": rhythm_text(series),
            "stop_reason": stop_reason_text(series) if not series.is_active else "",
            "runs": [
                {"run": run, "job": job, "url": reverse("admin:jobs_job_change", args=[run.job_id])}
                for run, job in series_runs(series.id)
            ],
            "page_url": reverse("jobs:series", args=[links.series_page_token(series.id, period_days=7)]),
            "actions": ACTIONS,
            "can_change": self.has_change_permission(request),
        }
        return render(request, "admin/jobs/series_detail.html", context)


admin.site.register(Series, SeriesAdmin)
