"""Tracking pixels, spacers and icons never reach a zip by default: either side under
IMAGEDL_MIN_SIDE (64) is ``too_small``. A job's minimum size can only raise the floor;
the commands' --min-size sets it for one run."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image

from downloader.config import validation_limits_from_settings
from downloader.validation import ImageRules, validate_file


def png(path: Path, size: tuple[int, int]) -> Path:
    Image.new("RGB", size, (200, 100, 50)).save(path, "PNG")
    return path


@pytest.mark.parametrize(
    "size,ok",
    [((1, 1), False), ((63, 400), False), ((400, 63), False), ((64, 64), True), ((300, 200), True)],
)
def test_the_default_floor_rejects_either_side_under_64(tmp_path, size, ok):
    check = validate_file(png(tmp_path / "a.png", size), ImageRules())
    assert check.ok is ok
    if not ok:
        assert check.reason == "too_small"


def test_a_jobs_minimum_size_only_raises_the_floor(tmp_path):
    path = png(tmp_path / "a.png", (40, 40))
    assert validate_file(path, ImageRules(min_width=10, min_height=10)).reason == "too_small"
    assert validate_file(png(tmp_path / "b.png", (100, 100)), ImageRules(min_width=120)).reason == "too_small"


def test_the_floor_follows_the_setting_and_can_be_turned_off_per_run(tmp_path, settings):
    path = png(tmp_path / "a.png", (1, 1))
    assert validate_file(path, ImageRules(min_side=0)).ok
    settings.IMAGEDL_MIN_SIDE = 0
    assert validate_file(path, ImageRules(), validation_limits_from_settings()).ok
    settings.IMAGEDL_MIN_SIDE = 200
    limits = validation_limits_from_settings()
    assert validate_file(png(tmp_path / "b.png", (150, 300)), ImageRules(), limits).reason == "too_small"
    assert validate_file(png(tmp_path / "c.png", (150, 300)), ImageRules(min_side=100), limits).ok


def test_min_size_on_the_command_lowers_the_floor_for_that_run(tmp_path, capsys, start_image_host):
    files = tmp_path / "files"
    files.mkdir()
    png(files / "pixel.png", (1, 1))
    Image.new("RGB", (32, 32), (10, 20, 240)).save(files / "icon.png", "PNG")
    host = start_image_host(files=files)
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{host.url('/file/pixel.png')}\n{host.url('/file/icon.png')}\n")
    call_command("download_urls", str(listing), "--out", str(tmp_path / "a.zip"), "--no-progress")
    assert "kept 0" in capsys.readouterr().out  # by default neither reaches a zip
    call_command(
        "download_urls",
        str(listing),
        "--out",
        str(tmp_path / "b.zip"),
        "--no-progress",
        "--min-size",
        "1x1",
    )
    assert "kept 2" in capsys.readouterr().out
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        assert len(zf.namelist()) == 6  # two images, the manifests (CSV, JSON lines), the credits, the card
