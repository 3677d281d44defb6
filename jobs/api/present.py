"""Jobs and series as the API shows them (plain dicts the schemas check)."""

from __future__ import annotations

from cassandra.util import datetime_from_uuid1
from django.urls import reverse

from jobs.lib import links
from jobs.lib.utc import aware_utc
from jobs.models import Job, JobStatus, Series
from jobs.store import records
from jobs.store.events import job_events
from jobs.store.webhooks import deliveries_of_job


def progress(job: Job) -> int:
    if job.status == JobStatus.DONE:
        return 100
    return int(100 * min(job.downloaded_count or 0, job.requested_count) / max(job.requested_count, 1))


def _links(job: Job) -> dict[str, str | None]:
    own = reverse("api:job_get", args=[job.id])
    return {
        "self": links.absolute(own),
        "status_page": links.status_url(job.id),
        "cancel": links.absolute(reverse("api:job_cancel", args=[job.id])),
        "manifest": links.absolute(reverse("api:job_manifest", args=[job.id])),
        "series": links.absolute(reverse("api:series_get", args=[job.series_id])) if job.series_id else None,
    }


def _download(job: Job) -> dict[str, object] | None:
    expires = records.download_expires_at(job)
    if job.status != JobStatus.DONE or expires is None:
        return None
    return {
        "url": links.download_url(job.id, expires),
        "bytes": job.archive_bytes or 0,
        "expires_at": expires,
    }


def job_out(job: Job) -> dict[str, object]:
    return {
        "id": job.id,
        "status": job.status,
        "created_at": aware_utc(job.created_at),
        "run_at": aware_utc(job.run_at),
        "time_zone": job.time_zone or "UTC",
        "query": job.query,
        "page_url": job.page_url,
        "requested_count": job.requested_count,
        "found_count": job.found_count or 0,
        "downloaded_count": job.downloaded_count or 0,
        "rejected_count": job.rejected_count or 0,
        "progress": progress(job),
        "engine": job.engine_used or job.engine,
        "pack": job.pack or "zip",
        "error": job.error,
        "series_id": job.series_id,
        "download": _download(job),
        "links": _links(job),
    }


def job_detail(job: Job) -> dict[str, object]:
    events = [
        {"at": datetime_from_uuid1(e.at), "kind": e.kind, "level": e.level, "message": e.message}
        for e in job_events(job.id, limit=300)
    ]
    deliveries = [
        {
            "event_id": d.event_id,
            "type": d.type,
            "state": d.state,
            "tries": d.tries or 0,
            "last_status": d.last_status,
            "reason": d.reason,
        }
        for d in deliveries_of_job(job.id)
    ]
    return {**job_out(job), "events": events, "webhooks": deliveries}


def series_out(series: Series) -> dict[str, object]:
    return {
        "id": series.id,
        "status": series.status,
        "every": series.every,
        "time_zone": series.time_zone,
        "local_time": series.local_time,
        "query": series.query,
        "page_url": series.page_url,
        "requested_count": series.requested_count,
        "runs_done": series.runs_done or 0,
        "next_run_at": aware_utc(series.next_run_at) if series.is_active else None,
        "next_job_id": series.next_job_id,
        "stop_reason": series.stop_reason,
        "delivered_total": series.delivered_total or 0,
    }
