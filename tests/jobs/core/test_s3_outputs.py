"""Archives and previews in an S3 bucket (IMAGEDL_S3_BUCKET) on a real s3proxy: the
worker uploads, the web redirects to a presigned URL or streams, the purge deletes, and
nothing of a job is left on the local disk."""

from __future__ import annotations

import io
import urllib.request
import zipfile
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command

from downloader.archive import write_archive
from downloader.collect import KeptImage
from jobs.core import services, storage
from jobs.core.run import job_run
from jobs.lib import links
from jobs.lib.links import download_url
from jobs.lib.metrics import S3_OPERATIONS
from jobs.models import JobStatus
from jobs.store import records
from jobs.store.records import download_expires_at
from tests.factories import NOW, images_in_archive, make_done_job, make_job, stored_archive
from tests.waiting import wait_for

grace_job = partial(make_job, email="grace@example.org", query="red fox", run_in=NOW)


def bucket_keys(prefix: str = "") -> list[str]:
    client = storage.outputs().connection.meta.client
    listing = client.list_objects_v2(Bucket=settings.IMAGEDL_S3_BUCKET, Prefix=prefix)
    return sorted(entry["Key"] for entry in listing.get("Contents", ()))


def zip_images(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return images_in_archive(archive.namelist())


def s3_requests() -> dict[str, float]:
    """This process's S3 requests so far by operation (imagedl_s3_requests), and the
    bytes of their bodies."""
    from prometheus_client import REGISTRY

    counts = {
        op: REGISTRY.get_sample_value("imagedl_s3_requests_total", {"operation": op}) or 0.0
        for op in S3_OPERATIONS
    }
    counts["bytes"] = REGISTRY.get_sample_value("imagedl_s3_bytes_sent_total") or 0.0
    return counts


def s3_requests_since(before: dict[str, float]) -> dict[str, float]:
    return {op: n - before[op] for op, n in s3_requests().items() if n != before[op]}


def local_outputs(job_id) -> list[Path]:
    media = Path(settings.MEDIA_ROOT)
    return [*media.glob(f"archives/{job_id.hex}*"), *media.glob(f"previews/{job_id.hex}/*")]


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.imitation(total=60)
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_job_through_a_worker_lands_in_the_bucket_and_the_link_redirects_to_it(
    client, s3_settings, start_worker, imitation, mailserver
):
    start_worker(
        imitation,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(mailserver.port),
        IMAGEDL_BASE_URL="http://testserver",
        **s3_settings,
    )
    job = grace_job(requested_count=12)
    assert wait_for(lambda: records.job_get(job.id).status == JobStatus.DONE, timeout=180, interval=1)
    done = records.job_get(job.id)
    assert bucket_keys(f"archives/{job.id.hex}") == [done.archive_path]
    assert len(bucket_keys(f"previews/{job.id.hex}/")) == 12
    assert local_outputs(job.id) == []  # nothing of it on the worker's disk, work folder gone
    assert not (Path(settings.MEDIA_ROOT) / "work" / job.id.hex).exists()

    response = client.get(urlsplit(download_url(job.id, download_expires_at(done))).path)
    assert response.status_code == 302 and response["Cache-Control"] == "no-store"
    presigned = response["Location"]
    assert presigned.startswith(f"{settings.AWS_S3_ENDPOINT_URL}/{settings.IMAGEDL_S3_BUCKET}/archives/")
    assert "X-Amz-Expires=300" in presigned and "X-Amz-Signature=" in presigned
    with urllib.request.urlopen(presigned, timeout=30) as answer:  # the user's browser, from the bucket
        assert 'filename="red-fox.zip"' in answer.headers["Content-Disposition"]
        data = answer.read()
    assert len(zip_images(data)) == 12 and len(data) == done.archive_bytes
    # Without the signature the bucket refuses: the objects are private.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(presigned.split("?")[0], timeout=30)
    assert refused.value.code == 403


@pytest.mark.django_db(databases=["default", "cassandra"])
def test_stream_mode_sends_the_object_through_the_web(client, cassandra_db, s3_settings, settings):
    settings.IMAGEDL_S3_REDIRECT = False
    done = make_done_job(images=3)
    assert bucket_keys("archives/") == [done.archive_path]
    response = client.get(urlsplit(download_url(done.id, download_expires_at(done))).path)
    assert response.status_code == 200 and response.streaming
    assert 'attachment; filename="red-fox.zip"' == response["Content-Disposition"]
    data = b"".join(response.streaming_content)
    assert data == stored_archive(done) and int(response["Content-Length"]) == len(data)
    assert len(zip_images(data)) == 3


@pytest.mark.django_db(databases=["default", "cassandra"])
def test_the_link_of_an_object_gone_from_the_bucket_says_gone(client, cassandra_db, s3_settings):
    done = make_done_job(images=1)
    storage.outputs().delete(done.archive_path)
    response = client.get(urlsplit(download_url(done.id, download_expires_at(done))).path)
    assert response.status_code == 410


@pytest.mark.browser
@pytest.mark.imitation(total=30)
@pytest.mark.django_db(databases=["default", "cassandra"])
def test_previews_are_served_from_the_bucket_and_the_purge_deletes_everything(
    client, cassandra_db, s3_settings, imitation
):
    job = make_job(requested_count=4)
    assert job_run(job.id) == "done: 4"
    done = records.job_get(job.id)
    rows = records.job_images(job.id)
    token = links.token_make(done.id, "status")
    for row in rows:
        response = client.get(f"/jobs/{token}/thumb/{row.position}.jpg")
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        stored = storage.outputs().open(services.preview_path(job.id, row.sha256)).read()
        assert b"".join(response.streaming_content) == stored
    assert client.get(f"/jobs/{token}/thumb/5.jpg").status_code == 404
    assert local_outputs(job.id) == []
    assert len(bucket_keys(f"previews/{job.id.hex}/")) == 4 and bucket_keys("archives/") == [
        done.archive_path
    ]

    services.job_purge(done)
    assert bucket_keys(f"previews/{job.id.hex}/") == [] and bucket_keys("archives/") == []
    assert client.get(f"/jobs/{token}/thumb/1.jpg").status_code == 404


@pytest.mark.browser
@pytest.mark.imitation(total=60)
@pytest.mark.django_db(databases=["default", "cassandra"])
def test_a_run_sends_one_put_per_preview_and_one_for_its_zip(cassandra_db, s3_settings, imitation):
    """No existence checks: previews are named by their content (writing one again
    writes the same bytes) and each run names its own zip."""
    job = make_job(requested_count=30)
    before = s3_requests()
    assert job_run(job.id) == "done: 30"
    done = records.job_get(job.id)
    sent = s3_requests_since(before)
    previews = bucket_keys(f"previews/{job.id.hex}/")
    assert len(previews) == services.PREVIEWS_KEPT  # the first 24 of 30 images
    assert {op: n for op, n in sent.items() if op != "bytes"} == {"PutObject": services.PREVIEWS_KEPT + 1}
    assert sent["bytes"] > done.archive_bytes
    # A later run of the job keeping the same image writes its preview again: the same
    # bytes under the same name.
    first = previews[0]
    data = storage.outputs().open(first).read()
    storage.preview_save(first, data)
    assert bucket_keys(f"previews/{job.id.hex}/") == previews
    assert storage.outputs().open(first).read() == data


@pytest.mark.django_db(databases=["default", "cassandra"])
def test_a_zip_larger_than_boto3s_part_size_goes_up_in_one_put(cassandra_db, s3_settings, tmp_path):
    """boto3 cuts an upload above 8 MB into parts (three requests at least): a job's zip
    up to storage.SINGLE_PUT_MAX goes up in one request."""
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + bytes(9 * 1024 * 1024))
    kept = [
        KeptImage(
            path=big,
            source_url="http://127.0.0.1/big.jpg",
            page_url="",
            width=1,
            height=1,
            format="jpg",
            bytes=big.stat().st_size,
            sha256="0" * 64,
        )
    ]
    before = s3_requests()
    archive = write_archive(kept, name_stem="big", path="archives/big.zip", storage=storage.outputs())
    sent = s3_requests_since(before)
    assert {op: n for op, n in sent.items() if op != "bytes"} == {"PutObject": 1}
    assert sent["bytes"] == archive.bytes > 9 * 1024 * 1024
    assert bucket_keys("archives/") == ["archives/big.zip"]


def test_ensure_storage_creates_the_bucket_once(s3_settings, settings):
    settings.IMAGEDL_S3_BUCKET = f"made-{s3_settings['IMAGEDL_S3_BUCKET']}"
    out = io.StringIO()
    call_command("ensure_storage", stdout=out)
    assert f"bucket {settings.IMAGEDL_S3_BUCKET} at " in out.getvalue() and "created" in out.getvalue()
    call_command("ensure_storage", stdout=out)
    assert out.getvalue().rstrip().endswith("exists")
    assert storage.outputs().listdir("")[1] == []


def test_ensure_storage_with_local_disk_does_nothing(settings):
    settings.IMAGEDL_S3_BUCKET = ""
    out = io.StringIO()
    call_command("ensure_storage", stdout=out)
    assert "local disk" in out.getvalue()
    assert storage.outputs() is storage.default_storage
