"""Credits in every zip: manifest.csv keeps its columns and gains title, host, engine,
rank, license and safe search; CREDITS.html links each image to its page, escaped."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.management import call_command

from downloader.archive import write_archive
from downloader.captions import caption_clean
from downloader.collect import KeptImage
from downloader.manifest import MANIFEST_COLUMNS
from jobs.core.run import job_run
from jobs.lib import links
from jobs.store import records
from tests.factories import make_done_job, make_job, stored_archive
from tests.imagehosts import encoded

FIRST_COLUMNS = ("file", "source_url", "page_url", "width", "height", "format", "bytes", "sha256")
EXTRAS = ["manifest.csv", "manifest.jsonl", "CREDITS.html", "README.md"]  # after the images
HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def read_zip(data: bytes) -> tuple[list[str], list[dict], str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("manifest.csv").decode())))
        return zf.namelist(), rows, zf.read("CREDITS.html").decode()


def hrefs(page: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', page)


def kept_image(path: Path, n: int, **fields: object) -> KeptImage:
    data = encoded(n, "jpeg", 200, 150)
    path.write_bytes(data)
    values = dict(
        source_url=f"http://img.example/{n}.jpg",
        page_url=f"https://pages.example/{n}",
        width=200,
        height=150,
        format="jpeg",
        bytes=len(data),
        sha256="0" * 64,
    )
    return KeptImage(path=path, **{**values, **fields})


def test_the_manifest_keeps_its_columns_and_credits_are_escaped_with_only_http_links(tmp_path):
    assert MANIFEST_COLUMNS[:8] == FIRST_COLUMNS
    assert MANIFEST_COLUMNS[8:15] == (
        "caption",
        "host",
        "engine",
        "rank",
        "license",
        "safe_search",
        "filters",
    )
    kept = [
        kept_image(tmp_path / "1", 1, caption="Red fox", engine="bing", rank=3, license="CC BY 4.0"),
        kept_image(tmp_path / "2", 2, caption=HOSTILE, engine="page", rank=1, page_url="javascript:alert(3)"),
        kept_image(tmp_path / "3", 3, source_url="http://img.example/3.jpg", page_url="data:text/html,<b>"),
    ]
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    archive = write_archive(kept, name_stem="red fox", path="a.zip", storage=storage, safe_search="strict")
    names, rows, page = read_zip(Path(storage.path(archive.path)).read_bytes())
    assert names == [
        "red-fox_0001.jpg",
        "red-fox_0002.jpg",
        "red-fox_0003.jpg",
        *EXTRAS,
    ]
    assert [row["caption"] for row in rows] == ["Red fox", caption_clean(HOSTILE), ""]
    assert [row["host"] for row in rows] == ["img.example"] * 3
    assert [(row["engine"], row["rank"], row["license"]) for row in rows][:2] == [
        ("bing", "3", "CC BY 4.0"),
        ("page", "1", ""),
    ]
    assert {row["safe_search"] for row in rows} == {"strict"}

    assert "<script" not in page and "<img" not in page  # the title's markup is text
    assert caption_clean(HOSTILE) == '" alert(1)' and "&quot; alert(1)" in page  # plain text, escaped
    links_out = [h for h in hrefs(page) if h not in names]
    assert links_out == ["https://pages.example/1", "http://img.example/2.jpg", "http://img.example/3.jpg"]
    assert "CC BY 4.0" in page and "Safe search: strict" in page


@pytest.mark.browser
@pytest.mark.imitation(total=40)
@pytest.mark.django_db(databases=["default", "cassandra"])
def test_a_job_zip_credits_every_image_with_the_engines_title_and_rank_and_no_made_up_license(
    cassandra_db, imitation
):
    job = make_job(requested_count=10, engine="bing")
    assert job_run(job.id) == "done: 10"
    done = records.job_get(job.id)
    names, rows, page = read_zip(stored_archive(done))
    assert names[-len(EXTRAS) :] == EXTRAS and len(names) == 10 + len(EXTRAS)
    by_rank = {int(row["rank"]): row for row in rows}
    # Ten distinct results of Bing's, at their places (downloads finish in any order).
    assert len(by_rank) == 10 and set(by_rank) <= set(range(1, 41))
    for rank, row in by_rank.items():
        assert row["source_url"] == imitation.image_url(rank)
        assert (row["caption"], row["engine"]) == (f"Result {rank}", "bing")
        assert row["license"] == ""  # Bing states none
        assert row["host"] == imitation.image_url(rank).split("/")[2].split(":")[0]
        assert f'href="http://example.org/article/{rank}"' in page
    stored = {row.rank: row for row in records.job_images(job.id)}  # what a resumed run adopts
    assert (
        all(
            (row.caption, row.engine, row.license) == (f"Result {rank}", "bing", "")
            for rank, row in stored.items()
        )
        and len(stored) == 10
    )


def test_download_urls_zips_carry_credits_too(image_host, tmp_path, capsys):
    listing = tmp_path / "urls.txt"
    listing.write_text(
        f"{image_host.url('/img/1.jpeg')},https://example.org/one\n{image_host.url('/img/2.jpeg')},javascript:x\n"
    )
    call_command("download_urls", str(listing), "--out", str(tmp_path / "out.zip"), "--no-progress")
    names, rows, page = read_zip((tmp_path / "out.zip").read_bytes())
    assert len(names) == 2 + len(EXTRAS) and len(rows) == 2
    # (downloads finish in any order: the entries follow them)
    assert sorted(h for h in hrefs(page) if h not in names) == sorted(
        ["https://example.org/one", image_host.url("/img/2.jpeg")]
    )


@pytest.mark.django_db(databases=["default", "cassandra"])
def test_thumbnails_count_images_only(cassandra_db, client, tmp_path):
    kept = [kept_image(tmp_path / str(n), n) for n in (1, 2)]
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    archive = write_archive(kept, name_stem="owls", path="owls.zip", storage=storage)
    job = make_done_job(images=2, archive=Path(storage.path(archive.path)).read_bytes(), query="owls")
    token = links.token_make(job.id, "status")
    assert client.get(f"/jobs/{token}/thumb/2.jpg").status_code == 200
    assert client.get(f"/jobs/{token}/thumb/3.jpg").status_code == 404  # the manifest is no image
    assert client.get(f"/jobs/{token}/thumb/4.jpg").status_code == 404  # nor are the credits
