"""Where a job's outputs live, its zip and its image previews: one place decides.

Local disk by default (Django's default storage, under MEDIA_ROOT). With
``IMAGEDL_S3_BUCKET`` set, an S3-compatible bucket through django-storages' S3 backend
(path-style addressing, so bucket names need no DNS): a worker uploads there and any
web process reads from there, with no disk shared between them. A run's work folder
(jobs/workdir.py) stays on the worker's own disk either way; the zip is built there and
then uploaded.

The download link answers with a redirect to a short-lived presigned URL of the object
(``IMAGEDL_S3_REDIRECT``, the default: the user's browser fetches it from the bucket),
or the web process streams the object when users cannot reach the bucket.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import FileResponse, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.http import content_disposition_header

from jobs.lib import metrics

# Settings that change which storage outputs() gives (tests flip them).
_SETTINGS = {
    "IMAGEDL_S3_BUCKET",
    "AWS_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_S3_REGION_NAME",
    "IMAGEDL_S3_URL_SECONDS",
}
STREAM_CHUNK = 256 * 1024
PREVIEW_TYPE = "image/jpeg"
MB = 1024 * 1024
# A zip up to SINGLE_PUT_MAX goes up in one PUT (a 50-image job's is ~7 MB, a 500-image
# one's ~65 MB: boto3's default, 8 MB, cut the larger of them into several requests);
# a larger one in parts of MULTIPART_PART, a few at a time.
SINGLE_PUT_MAX = 128 * MB
MULTIPART_PART = 32 * MB
MULTIPART_THREADS = 4


def uses_s3() -> bool:
    return bool(settings.IMAGEDL_S3_BUCKET)


@functools.cache
def _bucket_storage() -> Storage:
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from storages.backends.s3 import S3Storage

    class CountedS3Storage(S3Storage):
        """Every boto3 session it makes counts its requests (imagedl_s3_requests)."""

        def _create_session(self):
            session = super()._create_session()
            session.events.register("before-send.s3", _request_count)
            return session

    return CountedS3Storage(
        bucket_name=settings.IMAGEDL_S3_BUCKET,
        endpoint_url=settings.AWS_S3_ENDPOINT_URL or None,
        access_key=settings.AWS_ACCESS_KEY_ID or None,
        secret_key=settings.AWS_SECRET_ACCESS_KEY or None,
        region_name=settings.AWS_S3_REGION_NAME or None,
        file_overwrite=True,  # each run names its own zip; previews are named by content
        default_acl=None,  # objects stay private: users get presigned URLs
        querystring_auth=True,
        querystring_expire=settings.IMAGEDL_S3_URL_SECONDS,
        transfer_config=TransferConfig(
            multipart_threshold=SINGLE_PUT_MAX,
            multipart_chunksize=MULTIPART_PART,
            max_concurrency=MULTIPART_THREADS,
        ),
        client_config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            # Checksums only where S3 requires them: S3-compatible servers (s3proxy,
            # older MinIO) refuse boto3's default checksum headers.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 5, "mode": "standard"},
        ),
    )


def _request_count(request, event_name: str, **_kwargs: object) -> None:
    """Count one HTTP request about to go (``before-send.s3.<operation>``: each try)."""
    operation = event_name.rpartition(".")[2]
    metrics.s3_request_count(operation, int(request.headers.get("Content-Length") or 0))


@functools.cache
def _client():  # a boto3 S3 client
    """One S3 client for every thread of the process (boto3's clients are thread-safe).
    django-storages makes a session and a connection per thread, ~0.1 CPU-s each, and
    a run stores its previews from threads of its own: the direct requests (previews,
    deletes, listings, streams) go through this one."""
    return _bucket_storage().connection.meta.client


@receiver(setting_changed)
def _forget_storage(*, setting: str, **_kwargs: object) -> None:
    if setting in _SETTINGS:
        _bucket_storage.cache_clear()
        _client.cache_clear()


def outputs() -> Storage:
    """The storage of archives and previews."""
    return _bucket_storage() if uses_s3() else default_storage


# --- writing (the worker) -----------------------------------------------------------


def preview_save(path: str, data: bytes) -> None:
    """Store a preview. Its name is its image's content hash, so a later run keeping the
    same image writes the same bytes: a bucket takes one PUT, without asking first
    whether the object is there (the request that costs as much as the PUT)."""
    if not data:
        return
    if uses_s3():
        _client().put_object(Bucket=settings.IMAGEDL_S3_BUCKET, Key=path, Body=data, ContentType=PREVIEW_TYPE)
        return
    storage = outputs()
    if not storage.exists(path):  # local disk: saving a taken name would make a second file
        storage.save(path, ContentFile(data))


def scratch_folder(run_folder: Path) -> Path | None:
    """Where the archive of a run is built before it is stored: in place on local disk
    (None), in the run's work folder when the outputs are in a bucket."""
    return run_folder if uses_s3() else None


# --- removing (the purge, a run that lost its job) --------------------------------------


def delete(path: str) -> None:
    """Remove one object (nothing happens when it is not there)."""
    storage = outputs()
    if uses_s3():
        storage.delete(path)  # S3 deletes are idempotent: no existence check first
    elif storage.exists(path):
        storage.delete(path)


def delete_prefix(prefix: str) -> int:
    """Remove every object whose name starts with ``prefix`` (``archives/<job>``: the
    archive of every run of a job, delivered or not); returns how many."""
    if uses_s3():
        return _bucket_delete_prefix(prefix)
    storage = outputs()
    folder, _, start = prefix.rpartition("/")
    try:
        names = [name for name in storage.listdir(folder)[1] if name.startswith(start)]
    except FileNotFoundError:
        return 0
    for name in names:
        storage.delete(f"{folder}/{name}")
    return len(names)


def _bucket_delete_prefix(prefix: str) -> int:
    client = _client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=settings.IMAGEDL_S3_BUCKET, Prefix=prefix)
    keys = [entry["Key"] for page in pages for entry in page.get("Contents", ())]
    # One DELETE each: a job has a few objects, and S3-compatible servers refuse the
    # checksum header boto3 sends with a multi-object DeleteObjects.
    for key in keys:
        client.delete_object(Bucket=settings.IMAGEDL_S3_BUCKET, Key=key)
    return len(keys)


def delete_folder(folder: str) -> None:
    """Remove every object under ``folder`` (a prefix in a bucket)."""
    if uses_s3():
        _bucket_delete_prefix(f"{folder}/")
        return
    storage = outputs()
    try:
        names = storage.listdir(folder)[1]
    except FileNotFoundError:
        return
    for name in names:
        storage.delete(f"{folder}/{name}")


# --- reading (the web) ------------------------------------------------------------------


def exists(path: str) -> bool:
    return bool(path) and outputs().exists(path)


def download_response(path: str, filename: str) -> HttpResponse:
    """The answer to a download link: a redirect to a presigned URL of the zip, or its
    bytes (local disk, or a bucket users cannot reach)."""
    if uses_s3() and settings.IMAGEDL_S3_REDIRECT:
        url = outputs().url(
            path,
            parameters={
                "ResponseContentDisposition": content_disposition_header(True, filename),
                "ResponseContentType": "application/zip",
            },
            expire=settings.IMAGEDL_S3_URL_SECONDS,
        )
        response = HttpResponseRedirect(url)
        response["Cache-Control"] = "no-store"  # the URL expires: never reuse it
        return response
    if uses_s3():
        return _stream(path, filename)
    return FileResponse(default_storage.open(path, "rb"), as_attachment=True, filename=filename)


def _stream(path: str, filename: str) -> StreamingHttpResponse:
    """The object's bytes as they come from the bucket (never held whole in memory)."""
    client = _client()
    body = client.get_object(Bucket=settings.IMAGEDL_S3_BUCKET, Key=path)
    response = StreamingHttpResponse(_chunks(body["Body"]), content_type="application/zip")
    response["Content-Length"] = str(body["ContentLength"])
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


def _chunks(stream) -> Iterator[bytes]:
    try:
        yield from stream.iter_chunks(STREAM_CHUNK)
    finally:
        stream.close()


def preview_bytes(path: str) -> bytes | None:
    """A stored preview (a few KB), or None when it is not there."""
    try:
        with outputs().open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


# --- the bucket --------------------------------------------------------------------------


def ensure_bucket() -> bool:
    """Create the bucket if it does not exist; True if it was created. Local disk:
    nothing to do (False)."""
    if not uses_s3():
        return False
    from botocore.exceptions import ClientError

    client = _client()
    try:
        client.head_bucket(Bucket=settings.IMAGEDL_S3_BUCKET)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    params: dict[str, object] = {"Bucket": settings.IMAGEDL_S3_BUCKET}
    region = settings.AWS_S3_REGION_NAME
    if region and region != "us-east-1" and not settings.AWS_S3_ENDPOINT_URL:
        params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**params)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"BucketAlreadyOwnedByYou"}:
            return False
        raise
    return True


def archive_image(path: str, number: int) -> tuple[str, bytes] | None:
    """The n-th image of a delivered zip (its entry name and bytes), or None. A bucket's
    zip is read through the storage's file object (which fetches what it needs)."""
    import zipfile

    from downloader.archive import is_image_entry

    try:
        with outputs().open(path, "rb") as stream, zipfile.ZipFile(stream) as archive:
            names = [n for n in archive.namelist() if is_image_entry(n)]
            if not 1 <= number <= len(names):
                return None
            return names[number - 1], archive.read(names[number - 1])
    except (OSError, zipfile.BadZipFile):
        return None
