"""The API's OpenAPI document and its docs page: the copy in docs/openapi.json is the
one the code makes (``make api-schema`` refreshes it), and the docs page loads nothing
from elsewhere (the site's Content-Security-Policy holds)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.paths import REPO

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])
SNAPSHOT = REPO / "docs" / "openapi.json"


def test_the_schema_snapshot_is_current(tmp_path: Path):
    fresh = tmp_path / "openapi.json"
    call_command("export_openapi_schema", api="jobs.api.v1.api", indent=2, sort_keys=True, output=str(fresh))
    assert fresh.read_text() == SNAPSHOT.read_text(), (
        "the API changed: run `make api-schema` and commit docs/openapi.json"
    )


def test_the_schema_is_served_as_openapi_3_1(client, cassandra_db):
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    assert {
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/cancel",
        "/api/v1/jobs/{job_id}/manifest",
        "/api/v1/series",
        "/api/v1/series/{series_id}",
        "/api/v1/series/{series_id}/stop",
    } <= set(schema["paths"])
    schemes = schema["components"]["securitySchemes"]
    assert {"type": "apiKey", "in": "header", "name": "X-Api-Key"} in schemes.values()
    assert json.loads(SNAPSHOT.read_text())["paths"].keys() == schema["paths"].keys()


def test_the_docs_page_uses_only_our_own_assets(client, cassandra_db):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    assert "<script>" not in html  # no inline script: only a JSON data block and files
    assert "default-src 'self'" in response["Content-Security-Policy"]
