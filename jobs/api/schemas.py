"""What the API takes and gives, as typed schemas (they make the OpenAPI document)."""

from __future__ import annotations

import datetime as dt
import uuid

from ninja import Field, Schema
from pydantic import create_model

from downloader.manifest import INTEGER, MANIFEST_FIELDS, OPTIONAL_INTEGER, STRING


class JobIn(Schema):
    """A new job: the form's fields. ``{"query": "red fox", "count": 10}`` is enough."""

    query: str = Field("", description="What to search for (or give page_url).")
    page_url: str = Field("", description="A page to take the images from (or give query).")
    count: int = Field(..., description="How many images, 1 to 500.")
    run_at: dt.datetime | None = Field(
        None, description="When to run, ISO 8601 with a UTC offset; omitted: now. Minutes count, seconds not."
    )
    time_zone: str = Field(
        "UTC", description="The IANA zone the job's times are shown in (and a series keeps)."
    )
    formats: list[str] = Field(default_factory=list, description="jpeg, png, webp, gif...; empty: any.")
    min_width: int = 0
    min_height: int = 0
    engine: str = Field("auto", description="auto, all, bing, duckduckgo or google.")
    safe_search: str = Field("", description="strict, moderate (the default) or off.")
    filters: dict[str, str] = Field(
        default_factory=dict,
        description="Engine filters by kind: license, colour, layout, size, type, freshness.",
    )
    pack: str = Field(
        "zip", description="The delivery's layout: zip (the default), imagefolder, parquet or webdataset."
    )
    repeat: str = Field("never", description="never, day or week: a recurring series.")
    webhook_url: str | None = Field(None, description="Where the job's signed events are POSTed.")


class Links(Schema):
    self: str
    status_page: str
    cancel: str
    manifest: str
    series: str | None = None


class Download(Schema):
    url: str
    bytes: int
    expires_at: dt.datetime


class Event(Schema):
    at: dt.datetime
    kind: str
    level: str
    message: str


class Delivery(Schema):
    event_id: str
    type: str
    state: str
    tries: int
    last_status: int | None = None
    reason: str | None = None


class JobOut(Schema):
    id: uuid.UUID
    status: str
    created_at: dt.datetime
    run_at: dt.datetime
    time_zone: str
    query: str | None = None
    page_url: str | None = None
    requested_count: int
    found_count: int
    downloaded_count: int
    rejected_count: int
    progress: int = Field(..., description="Percent of the requested images kept so far.")
    engine: str | None = None
    pack: str = Field("zip", description="The delivery's layout: zip, imagefolder, parquet or webdataset.")
    error: str | None = None
    series_id: uuid.UUID | None = None
    download: Download | None = None
    links: Links


class JobDetail(JobOut):
    events: list[Event]
    webhooks: list[Delivery]


class JobPage(Schema):
    items: list[JobOut]
    next_cursor: str | None = Field(
        None, description="Pass as ?cursor= for the next page; null: the last page."
    )


def _manifest_image_schema() -> type[Schema]:
    """One row of the manifest, built from ``downloader.manifest.MANIFEST_FIELDS`` (the one
    list of its fields; docs/manifest.schema.json describes each)."""
    kinds = {STRING: (str, ...), INTEGER: (int, ...), OPTIONAL_INTEGER: (int | None, None)}
    fields = {name: kinds[kind] for name, kind in MANIFEST_FIELDS.items()}
    return create_model(
        "ManifestImage",
        __base__=Schema,
        __doc__="One row of the manifest (docs/manifest.schema.json describes each field).",
        **fields,
    )


ManifestImage = _manifest_image_schema()


class Manifest(Schema):
    job_id: uuid.UUID
    images: list[ManifestImage]


class SeriesOut(Schema):
    id: uuid.UUID
    status: str
    every: str
    time_zone: str
    local_time: str
    query: str | None = None
    page_url: str | None = None
    requested_count: int
    runs_done: int
    next_run_at: dt.datetime | None = None
    next_job_id: uuid.UUID | None = None
    stop_reason: str | None = None
    delivered_total: int


class SeriesList(Schema):
    items: list[SeriesOut]


class Problem(Schema):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    errors: dict[str, list[str]] | None = Field(None, description="Field errors (400 and 422).")
