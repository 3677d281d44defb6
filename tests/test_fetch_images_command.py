"""`manage.py fetch_images`: the same pipeline in the foreground, no web app, no job row."""

from __future__ import annotations

import zipfile

import pytest
from django.core.management import CommandError, call_command

from tests.imagehosts import ImageHost
from tests.imitations import SearchImitation

pytestmark = pytest.mark.browser


def test_search_download_and_zip(tmp_path, settings, capsys):
    with ImageHost("127.0.0.24") as host:
        server = SearchImitation(
            "127.0.0.25", image_url=lambda i: host.url(f"/img/{7000 + i}.png?w=300&h=300"), total=80
        ).start()
        settings.IMAGEDL_BING_URL = server.base
        settings.IMAGEDL_SCROLL_WAIT = 1.0
        try:
            call_command(
                "fetch_images",
                "Red Fox",
                "--count",
                "25",
                "--out",
                str(tmp_path / "fox.zip"),
                "--engine",
                "bing",
                "--formats",
                "png",
                "--no-progress",
            )
        finally:
            server.stop()
    out = capsys.readouterr().out
    assert "asked 25" in out and "kept 25" in out
    with zipfile.ZipFile(tmp_path / "fox.zip") as zf:
        names = zf.namelist()
    assert len(names) == 26 and names[0] == "red-fox_0001.png" and names[-1] == "manifest.csv"


def test_bad_arguments(tmp_path):
    with pytest.raises(CommandError, match="between 1 and 500"):
        call_command("fetch_images", "x", "--count", "0", "--out", str(tmp_path / "a.zip"))
    with pytest.raises(CommandError, match="unknown bmp"):
        call_command("fetch_images", "x", "--formats", "bmp", "--out", str(tmp_path / "a.zip"))
    with pytest.raises(CommandError, match=r"\.zip"):
        call_command("fetch_images", "x", "--out", str(tmp_path / "a.tar"))
