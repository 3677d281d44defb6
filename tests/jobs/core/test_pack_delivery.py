"""A job delivers its images in the layout it was asked for, in one zip: WebDataset
shards under shards/ whose samples carry the manifest row and the caption; a series'
every run keeps the layout its form asked for."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import webdataset as wds
from jsonschema import Draft202012Validator
from PIL import Image

from downloader.manifest import MANIFEST_COLUMNS
from jobs.core.run import job_run
from jobs.store import records
from jobs.store.series import series_get
from tests.factories import deliver_run, make_job, stored_archive, submit_series
from tests.jobs.core.test_manifest_schema import schema


@pytest.mark.browser
@pytest.mark.imitation(total=30)
@pytest.mark.django_db(databases=["default", "cassandra"])
def test_a_job_packed_as_webdataset_delivers_shards_of_captioned_samples(cassandra_db, imitation, tmp_path):
    job = make_job(requested_count=6, engine="bing", pack="webdataset")
    assert job_run(job.id) == "done: 6"
    with zipfile.ZipFile(io.BytesIO(stored_archive(records.job_get(job.id)))) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path)
    assert names == ["shards/shard-000000.tar", "manifest.csv", "CREDITS.html", "README.md"]
    samples = list(wds.WebDataset(str(tmp_path / "shards/shard-000000.tar"), shardshuffle=False))
    check = Draft202012Validator(schema())
    assert len(samples) == 6
    for sample in samples:
        row = json.loads(sample["json"])
        assert not list(check.iter_errors(row)) and list(row) == list(MANIFEST_COLUMNS)
        assert sample["txt"].decode() == row["caption"] == f"Result {row['rank']}"
        with Image.open(io.BytesIO(sample[row["format"].replace("jpeg", "jpg")])) as img:
            img.load()
            assert img.size == (row["width"], row["height"])
    assert "source_query: red fox" in (tmp_path / "README.md").read_text()


@pytest.mark.django_db(databases=["default", "cassandra"])
def test_every_run_of_a_series_keeps_its_layout(cassandra_db):
    first = deliver_run(submit_series(pack="parquet"))
    assert first.pack == "parquet"
    second = records.job_get(series_get(first.series_id).next_job_id)
    assert second.series_run == 2 and second.pack == "parquet"
