"""Jobs for tests, made the way the application makes them.

    job = make_job()                                  # scheduled an hour from now
    job = make_job(query="owls", run_in=NOW)          # queued at once
    done = make_done_job(images=3)                    # ran and delivered its zip
    data = stored_archive(done)
    first = submit_series()                           # a daily series and its first run's job
    deliver_run(first)                                # ...run and delivered: the next run exists

Every field of ``jobs.core.services.job_submit`` can be given; the rest are ``DEFAULTS``.
``make_job_record`` writes a row straight through ``jobs.store.records`` instead, for tests
of that layer (``created_at``, ``status`` as they please, nothing scheduled).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import types
import zipfile
import zoneinfo

from django.conf import settings
from django.core.files.base import ContentFile

from downloader.archive import MANIFEST_NAME, entry_names, is_image_entry
from downloader.manifest import manifest_csv, manifest_row
from jobs.core import services, storage
from jobs.models import Job, JobPurgeDue
from jobs.series.services import series_submit
from jobs.store import records
from jobs.store.queues import queue_bucket
from tests.imagehosts import encoded

DEFAULTS = {"email": "ada@example.org", "query": "red fox", "requested_count": 25, "time_zone": "UTC"}
IN_AN_HOUR = dt.timedelta(hours=1)
NOW = dt.timedelta(0)


def job_fields(run_in: dt.timedelta = IN_AN_HOUR, **fields: object) -> dict[str, object]:
    """``DEFAULTS`` with ``fields`` over them; ``run_at`` is now + ``run_in`` unless given.
    A ``page_url`` without a ``query`` makes a page job (no query)."""
    merged = {**DEFAULTS, "run_at": dt.datetime.now(dt.UTC) + run_in, **fields}
    if fields.get("page_url") and "query" not in fields:
        merged["query"] = ""
    return merged


def make_job(*, run_in: dt.timedelta = IN_AN_HOUR, **fields: object) -> Job:
    """A job submitted through ``services.job_submit``: stored, its run scheduled (queued
    at once when ``run_at`` is not in the future) and its "accepted" email queued."""
    return services.job_submit(**job_fields(run_in, **fields))


def make_job_record(*, run_in: dt.timedelta = IN_AN_HOUR, **fields: object) -> Job:
    """A job row written with ``records.job_create`` alone: no schedule, no event, no
    email. ``created_at`` and ``status`` may be given."""
    return records.job_create(**job_fields(run_in, **fields))


def make_archive(subject: str, images: int = 2, size: tuple[int, int] = (300, 200)) -> bytes:
    """A small real zip as a run delivers it: ``images`` distinct JPEGs named after the
    subject (``red-fox_0001.jpg``...), then manifest.csv describing them."""
    rows = []
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for n, name in enumerate(entry_names(subject, ["jpeg"] * images), 1):
            data = encoded(n, "jpeg", *size)
            archive.writestr(name, data)
            image = types.SimpleNamespace(
                source_url=f"http://images.example/{n}.jpg",
                page_url="http://example.org/page",
                width=size[0],
                height=size[1],
                format="jpeg",
                bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            rows.append(manifest_row(name, image, {}))
        archive.writestr(MANIFEST_NAME, manifest_csv(rows))
    return out.getvalue()


def make_done_job(
    *,
    images: int = 2,
    image_size: tuple[int, int] = (300, 200),
    archive: bytes | None = None,
    found: int | None = None,
    rejected: int | None = None,
    run_in: dt.timedelta = NOW,
    **fields: object,
) -> Job:
    """A job that ran and delivered ``images`` images, as read back from the store.

    Submitted with ``make_job`` to run now (``requested_count`` defaults to ``images``), its zip
    (``make_archive``, or the bytes of ``archive``) saved in ``jobs.core.storage.outputs()`` at
    ``archives/<id>.zip``, then started, given its ``found``/``rejected`` counters if
    any, and completed through ``jobs.core.services``.
    """
    fields.setdefault("requested_count", images)
    job = make_job(run_in=run_in, **fields)
    data = archive if archive is not None else make_archive(job.query or job.page_url, images, image_size)
    path = storage.outputs().save(f"archives/{job.id.hex}.zip", ContentFile(data))
    services.job_start_attempt(job)
    _record_images(job, data)
    progress = {k: v for k, v in (("found_count", found), ("rejected_count", rejected)) if v is not None}
    if progress:
        services.job_record_progress(job, **progress)
    assert services.job_complete(job, archive_path=path, archive_bytes=len(data), kept=images)
    return records.job_get(job.id)


def _record_images(job: Job, data: bytes) -> None:
    """The image rows and previews the run would have stored, from the zip's images
    (none for an ``archive`` that is not a zip)."""
    from PIL import Image

    from downloader.previews import preview_jpeg

    if not zipfile.is_zipfile(io.BytesIO(data)):
        return
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [name for name in archive.namelist() if is_image_entry(name)]
        for position, name in enumerate(names, 1):
            content = archive.read(name)
            sha256 = hashlib.sha256(content).hexdigest()
            with Image.open(io.BytesIO(content)) as img:
                size, fmt = img.size, (img.format or "").lower()
                services.job_add_preview(job, position, sha256, preview_jpeg(img))
            services.job_add_image(
                job,
                position,
                file_name=name,
                width=size[0],
                height=size[1],
                format=fmt,
                bytes=len(content),
                sha256=sha256,
                source_url=f"http://images.example/{position}",
            )


def stored_archive(job: Job) -> bytes:
    """The bytes of a finished job's zip as stored."""
    with storage.outputs().open(job.archive_path, "rb") as fh:
        return fh.read()


def finished_minutes_ago(job: Job, minutes: float, *, now: dt.datetime | None = None) -> None:
    """Move a finished job in the purge queue as if it had finished ``minutes`` before
    ``now``: it falls due that long ago plus the retention (IMAGEDL_RETENTION_MINUTES)."""
    now = now or dt.datetime.now(dt.UTC)
    for row in JobPurgeDue.objects.all():
        if row.job_id == job.id:
            row.delete()
    retention = dt.timedelta(minutes=settings.IMAGEDL_RETENTION_MINUTES)
    due = now - dt.timedelta(minutes=minutes) + retention
    JobPurgeDue.create(bucket=queue_bucket(due), due_at=due, job_id=job.id)
    records.job_update(job, purge_due_at=due)


def expire_lease(job: Job) -> None:
    """Let the lease of the run ``job.run_id`` run out, as if its worker had died (past
    the allowance for clocks apart, IMAGEDL_CLOCK_SKEW_SECONDS)."""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=settings.IMAGEDL_CLOCK_SKEW_SECONDS + 1)
    assert records.job_write_if(job, {"lease_until": past}, run_is=job.run_id)


def manifest_rows(data: bytes) -> list[dict]:
    """The rows of a zip's manifest.csv, as dicts by column name."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return list(csv.DictReader(io.StringIO(zf.read(MANIFEST_NAME).decode())))


def good_post(**changes: str) -> dict[str, str]:
    """A valid form post (two hours ahead, Paris time), with ``changes`` applied."""
    when = dt.datetime.now(zoneinfo.ZoneInfo("Europe/Paris")) + dt.timedelta(hours=2)
    data = {
        "query": "red fox",
        "page_url": "",
        "count": "120",
        "email": "ada@example.org",
        "run_date": when.strftime("%Y-%m-%d"),
        "run_time": when.strftime("%H:%M"),
        "time_zone": "Europe/Paris",
        "min_width": "0",
        "min_height": "0",
        "engine": "auto",
    }
    data.update(changes)
    return data


# --- recurring series --------------------------------------------------------------


def submit_series(every: str = "day", run_in: dt.timedelta = IN_AN_HOUR, **fields: object) -> Job:
    """A recurring series submitted through ``series_submit`` and confirmed by its
    mailbox's owner (double opt-in), returning its first run's job (Lin's, in Paris,
    2 images, unless ``fields`` say)."""
    from jobs.series.services import series_confirm
    from jobs.store.series import series_get

    values = {
        "email": "lin@example.org",
        "query": "red fox",
        "requested_count": 2,
        "time_zone": "Europe/Paris",
        "run_at": dt.datetime.now(dt.UTC) + run_in,
        **fields,
    }
    job = series_submit(every=every, **values)
    assert series_confirm(series_get(job.series_id))
    return records.job_get(job.id)


def deliver_run(job: Job, images: int = 2, first: int = 1, on_started=None) -> Job:
    """Run the job through the services as a worker would, keeping ``images`` images
    (numbered from ``first``: distinct pictures), and deliver it; ``on_started(job)``
    is called once it has started."""
    job = records.job_get(job.id)
    assert services.job_start_attempt(job)
    if on_started is not None:
        on_started(job)
    data = make_archive(job.query, images)
    path = storage.outputs().save(f"archives/{job.id.hex}.zip", ContentFile(data))
    for position in range(1, images + 1):
        content = f"image {first + position}".encode()
        services.job_add_image(
            job,
            position,
            file_name=f"{position}.jpg",
            sha256=hashlib.sha256(content).hexdigest(),
            phash="",
            width=300,
            height=200,
            format="jpeg",
            bytes=len(content),
            source_url=f"http://images.example/{first + position}",
        )
    assert services.job_complete(job, archive_path=path, archive_bytes=len(data), kept=images)
    return records.job_get(job.id)


def fail_run(job: Job, reason: str = "Nothing new this time.") -> Job:
    """Run the job through the services as a worker would, and fail it."""
    job = records.job_get(job.id)
    assert services.job_start_attempt(job)
    assert services.job_fail(job, reason)
    return records.job_get(job.id)


def images_in_archive(names: list[str]) -> list[str]:
    """The image files among a delivered zip's names (a ``zip`` layout): not its
    manifests, credits or dataset card."""
    from downloader.archive import CREDITS_NAME
    from downloader.card import CARD_NAME
    from downloader.manifest import MANIFEST_CSV, MANIFEST_JSONL

    return [name for name in names if name not in (MANIFEST_CSV, MANIFEST_JSONL, CREDITS_NAME, CARD_NAME)]
