"""`manage.py fetch_images`: the same pipeline in the foreground, no web app, no job row."""

from __future__ import annotations

import zipfile

import pytest
from django.core.management import CommandError, call_command

from tests.imagehosts import image_urls

pytestmark = pytest.mark.browser


def test_search_download_and_zip(tmp_path, start_imitation, image_host, capsys):
    pngs = image_urls([image_host], seed=7000, fmt="png", width=300, height=300)
    start_imitation(image_url=pngs, total=80, scroll_wait=1.0)
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
    out = capsys.readouterr().out
    assert "asked 25" in out and "kept 25" in out
    with zipfile.ZipFile(tmp_path / "fox.zip") as zf:
        names = zf.namelist()
    assert (
        len(names) == 29
        and names[0] == "red-fox_0001.png"
        and names[-4:] == ["manifest.csv", "manifest.jsonl", "CREDITS.html", "README.md"]
    )


def test_bad_arguments(tmp_path):
    with pytest.raises(CommandError, match="between 1 and 500"):
        call_command("fetch_images", "x", "--count", "0", "--out", str(tmp_path / "a.zip"))
    with pytest.raises(CommandError, match="unknown bmp"):
        call_command("fetch_images", "x", "--formats", "bmp", "--out", str(tmp_path / "a.zip"))
    with pytest.raises(CommandError, match=r"\.zip"):
        call_command("fetch_images", "x", "--out", str(tmp_path / "a.tar"))
