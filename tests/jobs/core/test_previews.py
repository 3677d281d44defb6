"""Previews: made once by the worker from pixels it already decoded, served by the web
as stored (the web decodes no image), deleted with the job's other files."""

from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from jobs.core import services
from jobs.core.run import job_run
from jobs.lib import links
from jobs.store import records
from tests.factories import make_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(databases=["default", "cassandra"])]


@pytest.mark.imitation(total=40)
def test_the_worker_stores_previews_and_the_web_serves_them_without_decoding(
    client, cassandra_db, imitation, monkeypatch
):
    job = make_job(requested_count=6)
    assert job_run(job.id) == "done: 6"
    done = records.job_get(job.id)
    rows = records.job_images(job.id)
    stored = {}
    for row in rows:
        path = services.preview_path(job.id, row.sha256)
        with default_storage.open(path, "rb") as fh:
            stored[row.position] = fh.read()
        with Image.open(io.BytesIO(stored[row.position])) as img:
            assert img.format == "JPEG" and max(img.size) <= 160
            # The same picture, shrunk: proportions kept.
            assert abs(img.size[0] / img.size[1] - row.width / row.height) < 0.05

    def no_decoding(*args, **kwargs):
        raise AssertionError("the web decoded an image")

    monkeypatch.setattr(Image, "open", no_decoding)
    token = links.token_make(done.id, "status")
    for position in (1, 6):
        response = client.get(f"/jobs/{token}/thumb/{position}.jpg")
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        assert "max-age=86400" in response["Cache-Control"]
        assert b"".join(response.streaming_content) == stored[position]
    assert client.get(f"/jobs/{token}/thumb/7.jpg").status_code == 404
    monkeypatch.undo()

    services.job_purge(records.job_get(job.id))
    assert not any(default_storage.exists(services.preview_path(job.id, row.sha256)) for row in rows)


@pytest.mark.imitation(total=60)
def test_only_the_images_the_status_page_shows_get_a_preview(client, cassandra_db, imitation, monkeypatch):
    monkeypatch.setattr(services, "PREVIEWS_KEPT", 3)  # the page's first three
    job = make_job(requested_count=8)
    assert job_run(job.id) == "done: 8"
    rows = records.job_images(job.id)
    stored = [default_storage.exists(services.preview_path(job.id, row.sha256)) for row in rows]
    assert stored == [True] * 3 + [False] * 5  # one storage write per image shown, none more
    token = links.token_make(job.id, "status")
    assert client.get(f"/jobs/{token}/thumb/3.jpg").status_code == 200
    assert client.get(f"/jobs/{token}/thumb/4.jpg").status_code == 404
