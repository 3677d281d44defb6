"""Every layout delivers one zip: the images (zip), a Hugging Face image folder, Parquet
files or WebDataset shards, each with manifest.csv, CREDITS.html and a dataset card.
Read back with the tools people train with: pyarrow reads the Parquet files and the
image folder's metadata.jsonl, webdataset iterates the shards."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pyarrow.json as pa_json
import pyarrow.parquet as pq
import pytest
import webdataset as wds
import yaml
from django.core.files.storage import FileSystemStorage
from django.core.management import call_command
from PIL import Image

from downloader.archive import entry_names, write_archive
from downloader.collect import KeptImage
from downloader.dedupe import signature
from downloader.layouts import PackOptions
from downloader.manifest import MANIFEST_COLUMNS, manifest_row
from tests.imagehosts import encoded

SHARED = {"safe_search": "strict", "filters": "license=cc"}
MB = 1 << 20
SIZE = (800, 600)


def kept_images(folder: Path, count: int, big: bool = False) -> list[KeptImage]:
    """``count`` real images (JPEG and PNG in turn) with captions, as the collector keeps
    them; ``big``: noisy PNGs of about 0.8 MB."""
    kept = []
    for n in range(1, count + 1):
        fmt = "png" if big or n % 2 == 0 else "jpeg"
        data = encoded(n, fmt, *SIZE, noise=big)
        path = folder / f"kept-{n}"
        path.write_bytes(data)
        with Image.open(path) as img:
            phash = signature(img)
        kept.append(
            KeptImage(
                path=path,
                source_url=f"http://img.example/{n}.{fmt}",
                page_url=f"https://pages.example/{n}",
                width=SIZE[0],
                height=SIZE[1],
                format=fmt,
                bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                phash=phash,
                caption=f"Red fox number {n}",
                engine="bing",
                rank=n,
            )
        )
    return kept


def expected_rows(kept: list[KeptImage]) -> list[dict]:
    names = entry_names("red fox", [image.format for image in kept])
    return [manifest_row(name, image, SHARED) for name, image in zip(names, kept, strict=True)]


def pack(kept: list[KeptImage], folder: Path, **options: object) -> Path:
    """The delivered zip, written and unpacked into ``folder/out``; returns that folder."""
    storage = FileSystemStorage(location=str(folder / "media"))
    archive = write_archive(
        kept,
        name_stem="red fox",
        path="red-fox.zip",
        storage=storage,
        pack=PackOptions(**options),
        subject="red fox",
        **SHARED,
    )
    out = folder / "out"
    with zipfile.ZipFile(storage.path(archive.path)) as zf:
        zf.extractall(out)
    return out


def csv_rows(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def card(out: Path) -> tuple[dict, str]:
    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


def common_files(out: Path, kept: list[KeptImage]) -> dict:
    """What every layout has: manifest.csv of every image, CREDITS.html, the card."""
    rows = csv_rows(out)
    assert [row["file"] for row in rows] == [row["file"] for row in expected_rows(kept)]
    assert list(rows[0]) == list(MANIFEST_COLUMNS)
    assert "Red fox number 1" in (out / "CREDITS.html").read_text()
    header, body = card(out)
    assert header["task_categories"] == ["image-to-text", "text-to-image"]
    assert header["size_categories"] == ["n<1K"] and header["source_query"] == "red fox"
    assert header["source_engines"] == ["bing"] and header["license"] == "unknown"
    assert f"{len(kept)} images from a search for" in body
    assert "filtered: Creative Commons" in body  # the engine's filter, not a license
    return header


def test_the_zip_layout_is_todays_with_a_card(tmp_path):
    kept = kept_images(tmp_path, 3)
    out = pack(kept, tmp_path)
    common_files(out, kept)
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert rows == expected_rows(kept)
    for row, image in zip(rows, kept, strict=True):
        assert (out / row["file"]).read_bytes() == image.path.read_bytes()


def test_parquet_files_hold_the_images_and_every_manifest_field(tmp_path):
    kept = kept_images(tmp_path, 5, big=True)
    out = pack(kept, tmp_path, layout="parquet", parquet_mb=1)
    header = common_files(out, kept)
    assert header["configs"][0]["data_files"][0]["path"] == "data/train-*.parquet"
    files = sorted((out / "data").iterdir())
    assert len(files) > 1  # cut at the size asked
    assert [f.name for f in files] == [
        f"train-{i:05d}-of-{len(files):05d}.parquet" for i in range(len(files))
    ]
    assert not [p for p in out.iterdir() if p.suffix in (".jpg", ".png")]  # the images are in the files
    rows = []
    for file in files:
        parquet = pq.ParquetFile(file)
        features = json.loads(parquet.schema_arrow.metadata[b"huggingface"])["info"]["features"]
        assert features["image"] == {"_type": "Image"} and features["caption"]["dtype"] == "string"
        assert parquet.metadata.num_rows == 1 or file.stat().st_size <= 1 * MB + 64 * 1024
        rows += parquet.read().to_pylist()
    assert len(rows) == len(kept)
    for row, image, expected in zip(rows, kept, expected_rows(kept), strict=True):
        assert row.pop("image") == {"bytes": image.path.read_bytes(), "path": expected["file"]}
        assert row == expected


def test_webdataset_shards_iterate_with_decodable_images_and_their_manifest_rows(tmp_path):
    kept = kept_images(tmp_path, 5, big=True)
    out = pack(kept, tmp_path, layout="webdataset", shard_mb=1)
    header = common_files(out, kept)
    assert header["configs"][0]["data_files"][0]["path"] == "shards/*.tar"
    shards = sorted((out / "shards").iterdir())
    assert len(shards) > 1 and shards[0].name == "shard-000000.tar"
    assert all(shard.stat().st_size <= 1 * MB + 64 * 1024 for shard in shards)
    samples = list(wds.WebDataset([str(s) for s in shards], shardshuffle=False, empty_check=False))
    expected = expected_rows(kept)
    assert [s["__key__"] for s in samples] == [row["file"].rpartition(".")[0] for row in expected]
    for sample, row, image in zip(samples, expected, kept, strict=True):
        extension = row["file"].rpartition(".")[2]
        assert sample[extension] == image.path.read_bytes()
        with Image.open(io.BytesIO(sample[extension])) as img:
            img.load()
            assert img.size == SIZE
        assert json.loads(sample["json"]) == row
        assert sample["txt"].decode() == row["caption"]


def test_the_image_folders_metadata_loads_with_pyarrows_json_reader(tmp_path):
    kept = kept_images(tmp_path, 4)
    out = pack(kept, tmp_path, layout="imagefolder")
    common_files(out, kept)
    table = pa_json.read_json(out / "metadata.jsonl")
    assert table.column_names == ["file_name", "text", *MANIFEST_COLUMNS]
    rows = table.to_pylist()
    for row, expected, image in zip(rows, expected_rows(kept), kept, strict=True):
        assert row["file_name"] == expected["file"] and row["text"] == expected["caption"]
        assert (out / row["file_name"]).read_bytes() == image.path.read_bytes()
        assert {k: row[k] for k in MANIFEST_COLUMNS} == expected


def test_download_urls_packs_as_asked(image_host, tmp_path):
    listing = tmp_path / "urls.txt"
    listing.write_text("".join(f"{image_host.url(f'/img/{n}.jpeg')}\n" for n in range(1, 4)))
    out = tmp_path / "set.zip"
    call_command("download_urls", str(listing), "--out", str(out), "--pack", "parquet", "--no-progress")
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        table = pq.read_table(io.BytesIO(zf.read("data/train-00000-of-00001.parquet")))
    assert sorted(names) == ["CREDITS.html", "README.md", "data/train-00000-of-00001.parquet", "manifest.csv"]
    assert table.num_rows == 3


def test_a_layout_that_does_not_exist_is_refused(tmp_path):
    with pytest.raises(ValueError):
        PackOptions(layout="tarball")
    listing = tmp_path / "urls.txt"
    listing.write_text("http://127.0.0.1:9/x.jpg\n")
    with pytest.raises(Exception, match=r"--pack needs --out to name a \.zip"):
        call_command("download_urls", str(listing), "--out", str(tmp_path / "dir"), "--pack", "webdataset")


@pytest.mark.browser
@pytest.mark.imitation(total=20)
def test_fetch_images_packs_an_image_folder_with_captions(imitation, tmp_path):
    out = tmp_path / "fox.zip"
    call_command(
        "fetch_images",
        "red fox",
        "--count",
        "4",
        "--out",
        str(out),
        "--engine",
        "bing",
        "--pack",
        "imagefolder",
        "--no-progress",
    )
    with zipfile.ZipFile(out) as zf:
        metadata = [json.loads(line) for line in zf.read("metadata.jsonl").decode().splitlines()]
        names = set(zf.namelist())
    assert len(metadata) == 4 and all(row["file_name"] in names for row in metadata)
    assert {row["text"] for row in metadata} <= {f"Result {n}" for n in range(1, 21)}
