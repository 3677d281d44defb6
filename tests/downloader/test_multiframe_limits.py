"""Multi-frame images (TIFF pages, GIF, APNG, animated WebP) are held to the pixel
limit, the decode budget and a time bound over all their frames, not frame 0's."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from downloader import validation
from downloader.collect import Candidate, collect_images
from downloader.http import Fetcher, FetchPolicy
from downloader.validation import ImageRules, PixelBudget, ValidationLimits, validate_file

ONE_MP = ImageRules(max_pixels=1_000_000)


def frames(count: int, size: tuple[int, int], mode: str = "RGB") -> list[Image.Image]:
    out = []
    for n in range(count):
        img = Image.new(mode, size, (n * 7 % 256, 90, 200) if mode == "RGB" else n % 2)
        ImageDraw.Draw(img).rectangle([n, n, n + 20, n + 20], fill=(255, 255, 255) if mode == "RGB" else 1)
        out.append(img)
    return out


def tiff_small_then_large(path: Path, large: int = 3000) -> Path:
    """A 100x100 first page and a bilevel large second page (a few KB, group 4)."""
    first = Image.new("1", (100, 100), 1)
    second = Image.new("1", (large, large), 1)
    first.save(path, "TIFF", save_all=True, append_images=[second], compression="group4")
    return path


def gif_of(path: Path, count: int, size: tuple[int, int]) -> Path:
    first, *rest = frames(count, size)
    first.save(path, "GIF", save_all=True, append_images=rest, duration=40, loop=0)
    return path


def apng_of(path: Path, count: int, size: tuple[int, int]) -> Path:
    first, *rest = frames(count, size)
    first.save(path, "PNG", save_all=True, append_images=rest, duration=40)
    return path


def webp_of(path: Path, count: int, size: tuple[int, int]) -> Path:
    first, *rest = frames(count, size)
    first.save(path, "WEBP", save_all=True, append_images=rest, duration=40, lossless=True)
    return path


def test_a_tiff_whose_second_page_is_over_the_limit_is_rejected(tmp_path):
    path = tiff_small_then_large(tmp_path / "pages.tif")
    assert path.stat().st_size < 100_000
    check = validate_file(path, ONE_MP)
    assert (check.ok, check.reason) == (False, "too_many_pixels")


@pytest.mark.parametrize("make", [gif_of, apng_of, webp_of], ids=["gif", "apng", "webp"])
def test_pixels_over_all_frames_count_against_the_limit(tmp_path, make):
    # 30 frames of 400x400: each frame 0.16 MP, all of them 4.8 MP, over a 1 MP limit.
    path = make(tmp_path / "anim.bin", 30, (400, 400))
    assert validate_file(path, ImageRules(max_pixels=10_000_000)).ok  # fine under a larger limit
    check = validate_file(path, ONE_MP)
    assert (check.ok, check.reason) == (False, "too_many_pixels")


@pytest.mark.parametrize("make", [gif_of, apng_of, webp_of], ids=["gif", "apng", "webp"])
def test_one_files_validation_is_bounded_in_time_between_frames(tmp_path, make):
    path = make(tmp_path / "anim.bin", 12, (200, 200))
    over = ValidationLimits(max_seconds=1e-9)  # over before the second frame
    check = validate_file(path, ImageRules(), over)
    assert (check.ok, check.reason) == (False, "decode_timeout")


def test_the_decode_budget_grows_to_the_largest_page(tmp_path, monkeypatch):
    budget = PixelBudget(50_000_000)
    monkeypatch.setattr(validation, "_budget", budget)
    path = tiff_small_then_large(tmp_path / "pages.tif", large=1500)
    assert validate_file(path, ImageRules(max_pixels=5_000_000)).ok
    assert budget.peak >= 1500 * 1500 and budget.used == 0


def test_bad_multiframe_files_get_their_reason_and_the_run_goes_on(tmp_path, start_image_host):
    files = tmp_path / "files"
    files.mkdir()
    tiff_small_then_large(files / "pages.tif")
    gif_of(files / "many.gif", 30, (400, 400))
    apng_of(files / "many.png", 30, (400, 400))
    webp_of(files / "many.webp", 30, (400, 400))
    gif_of(files / "fine.gif", 3, (300, 200))
    names = ["pages.tif", "many.gif", "many.png", "many.webp", "fine.gif"]
    policy = FetchPolicy(allow_private=False, extra_allowed=("127.0.0.0/8",), total_timeout=10.0)
    host = start_image_host(files=files)
    fetcher = Fetcher(policy, concurrency=4, per_host=4)
    try:
        result = collect_images(
            [Candidate(host.url(f"/file/{name}")) for name in names],
            wanted=len(names),
            workdir=tmp_path / "work",
            rules=ImageRules(max_pixels=1_000_000),
            fetcher=fetcher,
        )
    finally:
        fetcher.close()
    assert [image.source_url.rsplit("/", 1)[1] for image in result.kept] == ["fine.gif"]
    assert result.rejected == {"too_many_pixels": 4}
