"""`manage.py download_urls` for people who already have URLs."""

from __future__ import annotations

import hashlib
import zipfile

import pytest
from django.core.management import CommandError, call_command

from downloader.archive import is_image_entry


def test_writes_a_zip_with_only_the_valid_unique_images(image_host, tmp_path, capsys):
    lines = [image_host.url(f"/img/{n}.jpeg?w=300&h=200") for n in range(8)]
    lines += [
        image_host.url("/html.jpg"),
        image_host.url("/img/0.jpeg?w=300&h=200"),
        "# a comment",
        "",
        image_host.url("/status/404"),
    ]
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join(lines))
    out = tmp_path / "out.zip"
    call_command("download_urls", str(listing), "--out", str(out), "--no-progress", "--concurrency", "4")
    summary = capsys.readouterr().out
    assert "kept 8" in summary and "html=1" in summary and "http_404=1" in summary
    assert "found 10" in summary and "unused 0" in summary  # the repeated URL is not a candidate twice
    with zipfile.ZipFile(out) as zf:
        assert len([n for n in zf.namelist() if n.endswith(".jpg")]) == 8
        assert "manifest.csv" in zf.namelist()


def test_writes_a_folder_and_applies_filters(image_host, tmp_path, capsys):
    listing = tmp_path / "urls.txt"
    listing.write_text(
        "\n".join(
            [
                image_host.url("/img/50.png?w=900&h=700"),
                image_host.url("/img/51.png?w=100&h=100"),
                image_host.url("/img/52.gif?w=900&h=700"),
            ]
        )
    )
    call_command(
        "download_urls",
        str(listing),
        "--out",
        str(tmp_path / "dir"),
        "--min-size",
        "800x600",
        "--formats",
        "png",
        "--no-progress",
    )
    assert [p.name for p in (tmp_path / "dir").iterdir()] == ["image_0001.png"]
    assert "too_small=1" in capsys.readouterr().out


def test_converts_every_image_to_one_format_on_request(image_host, tmp_path, capsys):
    listing = tmp_path / "urls.txt"
    listing.write_text(
        "\n".join(image_host.url(f"/img/{60 + n}.{fmt}?w=300&h=200") for n, fmt in enumerate(["png", "gif"]))
    )
    out = tmp_path / "converted.zip"
    call_command("download_urls", str(listing), "--out", str(out), "--convert-to", "jpeg", "--no-progress")
    with zipfile.ZipFile(out) as zf:
        images = sorted(n for n in zf.namelist() if is_image_entry(n))
        assert images == ["image_0001.jpg", "image_0002.jpg"]
        manifest = zf.read("manifest.csv").decode()
        for name in images:
            assert (
                hashlib.sha256(zf.read(name)).hexdigest() in manifest
            )  # the manifest tells the stored bytes


def test_bad_arguments_are_clear(tmp_path):
    with pytest.raises(CommandError, match="is not a file"):
        call_command("download_urls", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "x.zip"))
    listing = tmp_path / "u.txt"
    listing.write_text("http://127.0.0.1/a.jpg")
    with pytest.raises(CommandError, match="WIDTHxHEIGHT"):
        call_command("download_urls", str(listing), "--out", str(tmp_path / "x.zip"), "--min-size", "big")
