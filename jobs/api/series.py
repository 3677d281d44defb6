"""The series endpoints: list, read, stop. A series is the caller's when its mailbox
is (another mailbox's series is 404)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from jobs.api.present import series_out
from jobs.api.problems import ApiProblem
from jobs.api.schemas import Problem, SeriesList, SeriesOut
from jobs.lib.mailboxes import mailbox_owner
from jobs.models import ApiKey, Series
from jobs.series.services import series_stop
from jobs.store.api_keys import owner_jobs
from jobs.store.series import series_get

router = Router(tags=["series"])
ERRORS = {401: Problem, 403: Problem, 404: Problem, 429: Problem}
SCAN_ROWS = 500  # of the mailbox's newest jobs, where its series are found


def _key(request: HttpRequest) -> ApiKey:
    return request.auth  # type: ignore[attr-defined, return-value]


def owned_series(request: HttpRequest, series_id: str) -> Series:
    series = series_get(series_id)
    if series is None or not series.email or mailbox_owner(series.email) != _key(request).owner:
        raise ApiProblem(404, "No such series for this key.", kind="not-found")
    return series


@router.get("/series", response={200: SeriesList, **ERRORS}, url_name="series_list", summary="List series")
def series_list(request: HttpRequest) -> dict:
    """The mailbox's recurring series, newest first (those with a run among its
    newest 500 jobs)."""
    seen: list = []
    for row in owner_jobs(_key(request).owner, limit=SCAN_ROWS):
        if row.series_id is not None and row.series_id not in seen:
            seen.append(row.series_id)
    found = [series_get(series_id) for series_id in seen]
    return {"items": [series_out(s) for s in found if s is not None and s.purged_at is None]}


@router.get(
    "/series/{series_id}", response={200: SeriesOut, **ERRORS}, url_name="series_get", summary="Read a series"
)
def series_read(request: HttpRequest, series_id: str) -> dict:
    return series_out(owned_series(request, series_id))


@router.post(
    "/series/{series_id}/stop",
    response={200: SeriesOut, **ERRORS},
    url_name="series_stop",
    summary="Stop a series",
)
def series_end(request: HttpRequest, series_id: str) -> dict:
    """No more runs; the pending run is cancelled. Stopping a stopped series changes nothing."""
    series = owned_series(request, series_id)
    series_stop(series, reason="user", by="api")
    return series_out(series_get(series.id) or series)
