"""Validation of downloaded files with Pillow: a full decode, never a header check.

The real format comes from the bytes. A file is rejected with a short reason code:
``html``, ``svg``, ``not_an_image``, ``truncated``, ``too_many_pixels``,
``too_small``, ``format_not_allowed``. Also computes the perceptual hash used by
de-duplication, and converts to one output format when asked.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError

from downloader.dedupe import difference_hash

# Pillow format name -> our name and file extension.
FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff"}
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "bmp": "bmp", "tiff": "tif"}
SAVE_AS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
MAX_FRAMES_CHECKED = 200


@dataclass
class ImageRules:
    """What a job accepts. Empty ``formats`` means any of FORMATS."""

    formats: set[str] = field(default_factory=set)
    min_width: int = 0
    min_height: int = 0
    output_format: str | None = None
    max_pixels: int = 0  # 0: settings.IMAGEDL_MAX_PIXELS


@dataclass
class Validation:
    ok: bool
    reason: str = ""
    format: str = ""
    width: int = 0
    height: int = 0
    phash: str = ""


def sniff_markup(head: bytes) -> str | None:
    """Recognise HTML and SVG served in place of an image."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<script", b"<meta")):
        return "html"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text[:2048]):
        return "svg"
    if text.startswith(b"<?xml") or text.startswith(b"<"):
        return "html" if b"<html" in text[:4096] else "not_an_image"
    return None


class PixelBudget:
    """Bounds the pixels being decoded at once across all threads, so many large
    images arriving together cannot take the memory of all of them at the same time
    (each decoded pixel is up to 4 bytes). An image larger than the whole budget is
    decoded alone."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        need = min(max(pixels, 1), self.total)
        with self._cond:
            self._cond.wait_for(lambda: self.used + need <= self.total)
            self.used += need
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= need
                self._cond.notify_all()


_budget: PixelBudget | None = None
_budget_lock = threading.Lock()


def decode_budget() -> PixelBudget:
    """The process's budget (``IMAGEDL_DECODE_PIXEL_BUDGET``)."""
    global _budget
    with _budget_lock:
        if _budget is None:
            from django.conf import settings

            _budget = PixelBudget(settings.IMAGEDL_DECODE_PIXEL_BUDGET)
        return _budget


def _default_max_pixels() -> int:
    from django.conf import settings

    return settings.IMAGEDL_MAX_PIXELS


def validate_file(path: Path, rules: ImageRules) -> Validation:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    markup = sniff_markup(head)
    if markup:
        return Validation(False, markup)
    # Our own pixel limit, checked before decoding; Pillow's bomb check stays as a
    # second line at twice the limit.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                fmt = FORMATS.get(img.format or "")
                if fmt is None:
                    return Validation(False, "format_not_allowed")
                width, height = img.size
                if width * height > (rules.max_pixels or _default_max_pixels()):
                    return Validation(False, "too_many_pixels", fmt, width, height)
                if rules.formats and fmt not in rules.formats:
                    return Validation(False, "format_not_allowed", fmt, width, height)
                if width < rules.min_width or height < rules.min_height:
                    return Validation(False, "too_small", fmt, width, height)
                with decode_budget().hold(width * height):
                    img.load()  # the full decode: truncated or corrupt data fails here
                    frames = getattr(img, "n_frames", 1)
                    for index in range(1, min(frames, MAX_FRAMES_CHECKED)):
                        img.seek(index)
                        img.load()
                    img.seek(0)
                    phash = difference_hash(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Validation(False, "too_many_pixels")
    except UnidentifiedImageError:
        return Validation(False, "not_an_image")
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError):
        return Validation(False, "truncated")
    return Validation(True, "", fmt, width, height, phash)


def _frame_for(img: Image.Image, target_format: str) -> Image.Image:
    """The first frame in a mode the target format can store. Transparency becomes
    white in JPEG (it has none) instead of whatever colour the hidden pixels hold."""
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    frame = img.convert("RGBA") if has_alpha else img
    if target_format == "jpeg":
        if has_alpha:
            white = Image.new("RGBA", frame.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, frame).convert("RGB")
        return frame.convert("RGB")
    if frame.mode not in ("RGB", "RGBA", "L"):
        frame = frame.convert("RGB")  # CMYK, 16-bit, YCbCr ...
    return frame


def convert_file(path: Path, target_format: str) -> Path:
    """Re-encode an image to ``target_format``; returns the new file's path. Raises
    OSError or ValueError when Pillow cannot write it (the caller rejects the image)."""
    out = path.with_suffix("." + EXTENSIONS[target_format])
    try:
        with Image.open(path) as img:
            img.seek(0)
            frame = _frame_for(img, target_format)
            options = {"quality": 90} if target_format in ("jpeg", "webp") else {}
            frame.save(out, SAVE_AS[target_format], **options)
    except (OSError, ValueError, TypeError):
        if out != path:
            out.unlink(missing_ok=True)
        raise
    if out != path:
        path.unlink(missing_ok=True)
    return out
