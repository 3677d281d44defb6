"""Cheaper decodes that still read every byte: JPEGs at reduced scale (draft), still
WebPs straight from libwebp into one buffer. Damage anywhere is still caught, and the
signature matches the one Pillow's full decode gives."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bench.corpus import encode, photo
from downloader import validation
from downloader.dedupe import aligned_difference, signature, thumbnail
from downloader.validation import ImageRules, validate_file


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_a_large_jpeg_cut_short_anywhere_is_truncated(tmp_path, keep):
    body = encode(photo(1, 2400, 1600), "jpeg", 85)
    path = tmp_path / "cut.jpg"
    path.write_bytes(body[: int(len(body) * keep)])
    assert validate_file(path, ImageRules()).reason == "truncated"
    path.write_bytes(body)
    check = validate_file(path, ImageRules())
    assert check.ok and (check.width, check.height) == (2400, 1600)  # the real size, not the draft's


def test_a_jpeg_signature_at_reduced_scale_matches_the_full_decode(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(encode(photo(2, 2000, 1500), "jpeg", 85))
    with Image.open(path) as img:
        img.load()
        full = thumbnail(signature(img))
    reduced = thumbnail(validate_file(path, ImageRules()).phash)
    assert aligned_difference(full, reduced) < 4  # of 0-255; near duplicates are judged at 8


@pytest.mark.parametrize(
    "options,mode", [({"quality": 80}, "RGB"), ({"lossless": True}, "RGB"), ({"quality": 80}, "RGBA")]
)
def test_still_webps_through_libwebp_match_pillow(tmp_path, options, mode):
    if validation._libwebp() is None:
        pytest.skip("no libwebp found beside Pillow or on the system")
    img = photo(3, 900, 600).convert(mode)
    if mode == "RGBA":
        img.putalpha(Image.linear_gradient("L").resize(img.size))
    path = tmp_path / "a.webp"
    img.save(path, "WEBP", **options)
    check = validate_file(path, ImageRules())
    assert (check.ok, check.format, check.width, check.height) == (True, "webp", 900, 600)
    with Image.open(path) as opened:
        assert check.phash == signature(opened)
    body = path.read_bytes()
    path.write_bytes(body[: len(body) * 3 // 4])
    assert validate_file(path, ImageRules()).reason == "truncated"


def test_webp_size_is_read_from_the_header():
    for size in [(1, 1), (300, 200), (4000, 3000)]:
        for options in ({"quality": 70}, {"lossless": True}, {"quality": 70, "exif": b"Exif\x00\x00"}):
            buf = io.BytesIO()
            Image.new("RGB", size).save(buf, "WEBP", **options)
            assert validation.webp_canvas(buf.getvalue()[:64]) == size
    assert validation.webp_canvas(b"RIFF....WEBPJUNK" + b"\0" * 30) is None
