"""One manifest schema, docs/manifest.schema.json (JSON Schema 2020-12): every row of a
real job's manifest (manifest.jsonl, and manifest.csv read back) validates against it,
and the schema names exactly the fields the library writes, in order, so a field added
on one side only fails here."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from jsonschema import Draft202012Validator

from downloader.manifest import MANIFEST_COLUMNS, MANIFEST_FIELDS
from jobs.core.run import job_run
from jobs.store import records
from tests.factories import make_job, stored_archive

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "docs" / "manifest.schema.json"


def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def validator() -> Draft202012Validator:
    Draft202012Validator.check_schema(schema())
    return Draft202012Validator(schema())


def manifests(data: bytes) -> tuple[list[dict], list[dict], list[str]]:
    """manifest.jsonl's rows, manifest.csv's rows and its header, from a delivered zip."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        jsonl = [json.loads(line) for line in zf.read("manifest.jsonl").decode().splitlines()]
        reader = csv.DictReader(io.StringIO(zf.read("manifest.csv").decode()))
        return jsonl, list(reader), list(reader.fieldnames or [])


def as_csv_cells(row: dict) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in row.items()}


def test_the_schema_names_every_field_the_library_writes_in_order():
    document = schema()
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert list(document["properties"]) == list(MANIFEST_COLUMNS)
    assert document["required"] == list(MANIFEST_COLUMNS)
    assert document["additionalProperties"] is False
    for name, kind in MANIFEST_FIELDS.items():
        allowed = document["properties"][name].get("type") or "string"  # an enum of strings
        assert kind.split()[-1] in (allowed if isinstance(allowed, list) else [allowed]), name
        assert document["properties"][name]["description"], name


def test_a_row_with_a_field_the_schema_lacks_is_invalid():
    row = {
        "file": "fox_0001.jpg",
        "source_url": "http://img.example/1.jpg",
        "page_url": "",
        "width": 10,
        "height": 10,
        "format": "jpeg",
        "bytes": 1,
        "sha256": "0" * 64,
        "caption": "",
        "host": "img.example",
        "engine": "",
        "rank": None,
        "license": "",
        "safe_search": "",
        "filters": "",
        "dhash": "",
        **{name: "" for name in MANIFEST_COLUMNS[16:]},
    }
    assert not list(validator().iter_errors(row))
    assert list(validator().iter_errors({**row, "colour": "red"}))
    assert list(validator().iter_errors({**row, "rank": 0}))
    assert list(validator().iter_errors({k: v for k, v in row.items() if k != "caption"}))


@pytest.mark.browser
@pytest.mark.imitation(total=40)
@pytest.mark.django_db(databases=["default", "cassandra"])
def test_every_row_of_a_real_jobs_manifest_follows_the_schema(cassandra_db, imitation):
    job = make_job(requested_count=8, engine="bing")
    assert job_run(job.id) == "done: 8"
    rows, csv_rows, header = manifests(stored_archive(records.job_get(job.id)))
    assert len(rows) == 8 and header == list(MANIFEST_COLUMNS)
    check = validator()
    for row in rows:
        assert not [error.message for error in check.iter_errors(row)]
        assert row["caption"] and row["engine"] == "bing" and len(row["dhash"]) == 16
    assert [as_csv_cells(row) for row in rows] == csv_rows  # the CSV carries the same fields


def test_every_row_of_a_url_lists_manifest_follows_the_schema(image_host, tmp_path):
    listing = tmp_path / "urls.txt"
    listing.write_text(
        f"{image_host.url('/img/1.jpeg')}\n{image_host.url('/img/2.png')},https://example.org/2\n"
    )
    call_command("download_urls", str(listing), "--out", str(tmp_path / "out.zip"), "--no-progress")
    rows, csv_rows, _ = manifests((tmp_path / "out.zip").read_bytes())
    assert len(rows) == 2
    check = validator()
    for row in rows:
        assert not [error.message for error in check.iter_errors(row)]
        assert (row["engine"], row["rank"], row["safe_search"]) == ("", None, "")
    assert [as_csv_cells(row) for row in rows] == csv_rows
