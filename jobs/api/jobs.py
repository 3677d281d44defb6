"""The jobs endpoints: submit, list, read, cancel, manifest. Every job is looked up in
the caller's mailbox; another mailbox's job is 404, never 403 (its existence is not
confirmed)."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from ninja import Header, Query, Router, Status

from downloader.archive import entry_names
from downloader.manifest import manifest_row
from jobs.api.present import job_detail, job_out
from jobs.api.problems import ApiProblem
from jobs.api.schemas import JobDetail, JobIn, JobOut, JobPage, Manifest, Problem
from jobs.api.submit import job_submit_api
from jobs.core import services
from jobs.core.run import manifest_shared, request_for
from jobs.models import ApiKey, Job, JobImage, JobStatus
from jobs.store import records
from jobs.store.api_keys import owner_has_job, owner_jobs

router = Router(tags=["jobs"])
ERRORS = {401: Problem, 403: Problem, 404: Problem, 429: Problem}


def _key(request: HttpRequest) -> ApiKey:
    return request.auth  # type: ignore[attr-defined, return-value]


def owned_job(request: HttpRequest, job_id: str) -> Job:
    """The caller's job ``job_id``, or 404."""
    try:
        job = records.job_get(uuid.UUID(job_id))
    except ValueError:
        job = None
    if job is None or job.status is None or not owner_has_job(_key(request).owner, job):
        raise ApiProblem(404, "No such job for this key.", kind="not-found")
    return job


@router.post(
    "/jobs",
    response={201: JobOut, 400: Problem, 409: Problem, 422: Problem, **ERRORS},
    url_name="job_submit",
    summary="Submit a job",
)
def job_submit(
    request: HttpRequest,
    response: HttpResponse,
    payload: JobIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> Status:
    """Validated as the form is; the job's address is the key's mailbox. With an
    `Idempotency-Key`, a repeated request returns the job the first one made."""
    job, replayed = job_submit_api(request, payload, _key(request), idempotency_key)
    body = job_out(job)
    response["Location"] = body["links"]["self"]  # type: ignore[index]
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return Status(201, body)


@router.get(
    "/jobs", response={200: JobPage, 400: Problem, **ERRORS}, url_name="job_list", summary="List jobs"
)
def job_list(
    request: HttpRequest, cursor: str | None = Query(None), limit: int = Query(20, ge=1, le=100)
) -> dict:
    """The mailbox's jobs, newest first; `next_cursor` fetches the next page."""
    before = None
    if cursor:
        decoded = records.Cursor.decode(cursor)
        if decoded is None:
            raise ApiProblem(400, "That cursor is not one we gave.")
        before = (decoded.created_at, decoded.job_id)
    rows = owner_jobs(_key(request).owner, limit=limit + 1, before=before)
    more = len(rows) > limit
    rows = rows[:limit]
    found = {job.id: job for job in Job.objects.filter(id__in=[r.job_id for r in rows])} if rows else {}
    items = [job_out(found[r.job_id]) for r in rows if r.job_id in found and found[r.job_id].status]
    next_cursor = records.Cursor(rows[-1].created_at, rows[-1].job_id).encode() if more and rows else None
    return {"items": items, "next_cursor": next_cursor}


@router.get("/jobs/{job_id}", response={200: JobDetail, **ERRORS}, url_name="job_get", summary="Read a job")
def job_get(request: HttpRequest, job_id: str) -> dict:
    """Status, counts, progress, events, webhook deliveries and, once done, the
    download link, its size and expiry."""
    return job_detail(owned_job(request, job_id))


@router.post(
    "/jobs/{job_id}/cancel",
    response={200: JobOut, 409: Problem, **ERRORS},
    url_name="job_cancel",
    summary="Cancel a job",
)
def job_cancel(request: HttpRequest, job_id: str) -> dict:
    """Cancel a scheduled or running job (409 once it has finished)."""
    job = owned_job(request, job_id)
    if not services.job_cancel(job, by="api"):
        raise ApiProblem(409, f"The job has already finished ({job.status}).", kind="already-finished")
    return job_out(records.job_get(job.id) or job)


@router.get(
    "/jobs/{job_id}/manifest",
    response={200: Manifest, 409: Problem, **ERRORS},
    url_name="job_manifest",
    summary="A job's manifest",
)
def job_manifest(request: HttpRequest, job_id: str) -> dict:
    """The images of a delivered job: the rows of its zip's manifest, every field of
    `docs/manifest.schema.json`."""
    job = owned_job(request, job_id)
    if job.status != JobStatus.DONE:
        raise ApiProblem(
            409, f"The job is {job.status}: only a delivered job has a manifest.", kind="not-ready"
        )
    request = request_for(job)
    rows = records.job_images(job.id, run_id=job.run_id)  # the delivering run's, in the zip's order
    names = entry_names(request.name_stem, [row.format for row in rows])  # as the zip names them
    shared = manifest_shared(request)
    images = [manifest_row(name, _captioned(row), shared) for name, row in zip(names, rows, strict=True)]
    return {"job_id": job.id, "images": images}


def _captioned(row: JobImage) -> JobImage:
    """A row stored before captions has the engine's title instead."""
    if not row.caption and row.title:
        row.caption = row.title
    return row
