"""Validation of downloaded files with Pillow: every byte decoded, never a header check.

The real format comes from the bytes. A file is rejected with a short reason code:
``html``, ``svg``, ``not_an_image``, ``truncated``, ``too_many_pixels``,
``too_small``, ``format_not_allowed``, ``decode_timeout``, ``filter_mismatch`` (not the
layout, or not animated, when a search's engine filters asked for it: see ``layout_of``).
Also computes the signature used by de-duplication, reads the rights the file states
(EXIF and XMP: ``downloader.rights``), and converts to one output format when asked.

JPEGs are decoded at a reduced scale (``draft``: 1/2 to 1/8 by the DCT itself), which
still reads and entropy-decodes every byte, so truncated and corrupt files fail as
before, at a fraction of the time and memory. Other formats are decoded in full, every
frame: each frame's size counts against the pixel limit, and so does the sum over all
frames; the decode budget is held for the largest frame met so far; and one file's
decode is bounded in time, checked between frames (a decode cannot be interrupted
inside a thread).
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import io
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError

from downloader.dedupe import signature
from downloader.previews import preview_jpeg
from downloader.rights import Rights, image_rights, webp_chunk_rights

# Pillow format name -> our name and file extension.
FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff"}
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "bmp": "bmp", "tiff": "tif"}
SAVE_AS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
MAX_FRAMES_CHECKED = 200
DRAFT_LONG_SIDE = 128  # JPEGs are decoded no smaller than this (when they are larger)
# What a WebP decode takes per pixel, in the budget's units of 4 bytes: Pillow decodes
# it through libwebp's animation decoder, whose two-frame canvas is made when the file
# is opened, then copies the frame out as bytes, then into the image (~16 bytes).
WEBP_COST = 4


@dataclass(frozen=True)
class ValidationLimits:
    """The service's limits on every file (``downloader.config`` reads them from
    IMAGEDL_MAX_PIXELS, IMAGEDL_MIN_SIDE and IMAGEDL_VALIDATION_SECONDS)."""

    max_pixels: int = 80_000_000  # per frame, and over all frames
    min_side: int = 64  # the junk floor: tracking pixels, spacers, icons
    max_seconds: float = 15.0  # one file's decode, checked between frames


@dataclass
class ImageRules:
    """What a job accepts. Empty ``formats`` means any of FORMATS.

    ``min_side`` is the junk floor (tracking pixels, spacers, icons): either side
    under it is ``too_small``. None means the limits' ``min_side``; a job's
    ``min_width``/``min_height`` can only raise it; a command's ``--min-size`` sets it
    for that run (0 turns it off). ``max_pixels`` and ``max_seconds``: 0 means the
    limits' value (see ``within``).
    """

    formats: set[str] = field(default_factory=set)
    min_width: int = 0
    min_height: int = 0
    output_format: str | None = None
    max_pixels: int = 0
    min_side: int | None = None
    max_seconds: float = 0
    # The engine filters the pixels can check (downloader.choices.Filters): a layout
    # ("" any), and whether only animated images (more than one frame) may pass.
    layout: str = ""
    animated: bool = False

    def within(self, limits: ValidationLimits) -> ImageRules:
        """A copy with every limit left open (0, None) taken from ``limits``."""
        return dataclasses.replace(
            self,
            formats=set(self.formats),
            max_pixels=self.max_pixels or limits.max_pixels,
            min_side=limits.min_side if self.min_side is None else self.min_side,
            max_seconds=self.max_seconds or limits.max_seconds,
        )


# An image is square when its long side is at most this much longer than its short one
# (1000 x 1090 is square, 1000 x 1110 is tall); otherwise it is wide or tall.
SQUARE_TOLERANCE = 1.1


def layout_of(width: int, height: int) -> str:
    """The layout the pixel size shows: square, wide or tall (see SQUARE_TOLERANCE)."""
    if max(width, height) <= SQUARE_TOLERANCE * min(width, height):
        return "square"
    return "wide" if width > height else "tall"


def _wrong_layout(rules: ImageRules, width: int, height: int) -> bool:
    return bool(rules.layout) and layout_of(width, height) != rules.layout


@dataclass
class Validation:
    ok: bool
    reason: str = ""
    format: str = ""
    width: int = 0
    height: int = 0
    phash: str = ""
    preview: bytes = b""  # a small JPEG of a valid image (downloader.previews)
    rights: Rights = field(default_factory=Rights)  # what its EXIF and XMP state (downloader.rights)


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

    def _take(self, need: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self.used + need <= self.total)
            self.used += need
            self.peak = max(self.peak, self.used)

    def _give(self, need: int) -> None:
        with self._cond:
            self.used -= need
            self._cond.notify_all()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[Hold]:
        """Hold ``pixels`` of the budget; ``Hold.grow`` raises the amount held (a
        later frame larger than the first)."""
        held = Hold(self, min(max(pixels, 1), self.total))
        self._take(held.amount)
        try:
            yield held
        finally:
            self._give(held.amount)


class Hold:
    def __init__(self, budget: PixelBudget, amount: int) -> None:
        self.budget = budget
        self.amount = amount

    def grow(self, pixels: int) -> None:
        need = min(max(pixels, 1), self.budget.total)
        if need <= self.amount:
            return
        # Let go first, then wait for the larger amount: two growing holders must not
        # wait on each other.
        self.budget._give(self.amount)
        self.amount = 0
        self.budget._take(need)
        self.amount = need


DEFAULT_DECODE_PIXEL_BUDGET = 32_000_000
_budget: PixelBudget | None = None
_budget_total = DEFAULT_DECODE_PIXEL_BUDGET
_budget_lock = threading.Lock()


def limit_malloc_arenas(count: int) -> None:
    """Cap glibc's malloc arenas. Each thread that meets contention gets its own heap
    (up to 8 per core) and each keeps what is freed in it: with 30-odd threads decoding
    images of every size, the process grew to twice the memory it used (550 MB peak
    against 300 MB with two arenas, on the realistic benchmark corpus). Takes effect
    for threads started afterwards (call it before any download starts); a no-op off
    glibc."""
    if count <= 0:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-8, count)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


MMAP_THRESHOLD = 1 << 20  # allocations of this size and more get pages of their own


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> None:
    """Give every allocation of ``size`` bytes or more its own pages, handed back to
    the system when it is freed. glibc starts at 128 KB but raises the threshold to the
    size of each such block freed (up to 32 MB): after the first large image, decoded
    pixels and file buffers come from the heap, which keeps what they leave. Fixed at
    1 MB, download_urls on the realistic corpus peaked at 151 MB instead of 185 and
    left 110 MB instead of 145 (Parquet's packing then peaked at 160 MB, not 190). A
    no-op off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, size)  # M_MMAP_THRESHOLD (also ends its dynamic adjustment)
    except (OSError, AttributeError):
        pass


def malloc_release() -> None:
    """Hand the heap that freed objects left back to the system (glibc's
    ``malloc_trim(0)``, after a garbage collection): what a download phase freed (file
    buffers, decoded pixels) is otherwise kept by the process for its next allocations,
    and the packing that follows starts from the download's high-water mark. A no-op
    off glibc."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def set_decode_budget(total: int) -> None:
    """Size the process's decode budget (pixels being decoded at once, all threads
    together); takes effect unless a decode has made the budget already."""
    global _budget_total
    with _budget_lock:
        _budget_total = total


def decode_budget() -> PixelBudget:
    """The process's budget (DEFAULT_DECODE_PIXEL_BUDGET unless ``set_decode_budget``)."""
    global _budget
    with _budget_lock:
        if _budget is None:
            _budget = PixelBudget(_budget_total)
        return _budget


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _draft_size(width: int, height: int) -> tuple[int, int]:
    """The smallest size a JPEG may be decoded at here: an eighth, but no less than
    DRAFT_LONG_SIDE on the long side (the signature needs a few pixels per cell)."""
    scale = max(1 / 8, min(1.0, DRAFT_LONG_SIDE / max(width, height, 1)))
    return max(1, int(width * scale)), max(1, int(height * scale))


def validate_file(
    path: Path, rules: ImageRules, limits: ValidationLimits | None = None, *, preview: bool = True
) -> Validation:
    """Decode the file at ``path`` in full and check it against ``rules``; what the
    rules leave open comes from ``limits`` (the defaults when None). ``preview``: make
    the small JPEG of a valid image (``Validation.preview``; else empty).

    The file is read once, whole (up to the download's byte cap; callers decode a few
    files at a time), and decoded from memory: no small reads and seeks on the file."""
    data = path.read_bytes()
    head = data[:4096]
    markup = sniff_markup(head)
    if markup:
        return Validation(False, markup)
    rules = rules.within(limits or ValidationLimits())
    max_pixels = rules.max_pixels
    floor = rules.min_side or 0
    min_width, min_height = max(rules.min_width, floor), max(rules.min_height, floor)
    deadline = time.monotonic() + rules.max_seconds
    # Our own pixel limit, checked before decoding; Pillow's bomb check stays as a
    # second line at twice the limit.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    fmt, width, height = "", 0, 0
    canvas = webp_canvas(head)  # Pillow makes a WebP's canvas when it opens the file
    if canvas and canvas[0] * canvas[1] > max_pixels:
        return Validation(False, "too_many_pixels", "webp", *canvas)
    if canvas and not _webp_animated(head) and _libwebp() is not None:
        return _validate_still_webp(data, canvas, rules, min_width, min_height, preview)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with (
                decode_budget().hold(canvas[0] * canvas[1] * WEBP_COST if canvas else 1) as held,
                Image.open(io.BytesIO(data)) as img,
            ):
                fmt = FORMATS.get(img.format or "")
                if fmt is None:
                    return Validation(False, "format_not_allowed")
                width, height = img.size
                if width * height > max_pixels:
                    return Validation(False, "too_many_pixels", fmt, width, height)
                if rules.formats and fmt not in rules.formats:
                    return Validation(False, "format_not_allowed", fmt, width, height)
                if width < min_width or height < min_height:
                    return Validation(False, "too_small", fmt, width, height)
                # Of the types only "animated" shows in the pixels: a photo, clip art or
                # line drawing is never rejected for its frames (or anything else).
                if _wrong_layout(rules, width, height) or (
                    rules.animated and not getattr(img, "is_animated", False)
                ):
                    return Validation(False, "filter_mismatch", fmt, width, height)
                if fmt == "jpeg":
                    img.draft(img.mode, _draft_size(width, height))
                held.grow(img.size[0] * img.size[1] * (WEBP_COST if fmt == "webp" else 1))
                img.load()  # every byte read: truncated or corrupt data fails here
                phash = signature(img)
                small = preview_jpeg(img) if preview else b""
                rights = image_rights(img)
                _check_frames(img, max_pixels, held, deadline)
    except _Rejected as rejected:
        return Validation(False, rejected.reason, fmt or "", width, height)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Validation(False, "too_many_pixels")
    except UnidentifiedImageError:
        return Validation(False, "not_an_image")
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError):
        return Validation(False, "truncated")
    return Validation(True, "", fmt, width, height, phash, small, rights)


def webp_canvas(head: bytes) -> tuple[int, int] | None:
    """Width and height from a WebP file's first chunk (VP8X, VP8 or VP8L), or None."""
    if len(head) < 30 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk = head[12:16]
    if chunk == b"VP8X":  # 24-bit canvas size minus one
        return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and start code
        return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    if chunk == b"VP8L":  # lossless: 14-bit sizes minus one after the signature byte
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _webp_animated(head: bytes) -> bool:
    return head[12:16] == b"VP8X" and bool(head[20] & 0x02)


_webp_lib: ctypes.CDLL | bool | None = False  # False: not looked for yet


def _libwebp() -> ctypes.CDLL | None:
    """libwebp's simple decoder: preferably the copy bundled with Pillow (the one its
    WebP plugin uses), else the system's; None when neither is found."""
    global _webp_lib
    if _webp_lib is False:
        import ctypes.util

        import PIL

        bundled = sorted((Path(PIL.__file__).parent.parent / "pillow.libs").glob("libwebp-*.so*"))
        candidates = [str(p) for p in bundled] + [ctypes.util.find_library("webp") or ""]
        _webp_lib = None
        for name in filter(None, candidates):
            try:
                lib = ctypes.CDLL(name)
                lib.WebPDecodeRGBA.restype = ctypes.c_void_p
                lib.WebPDecodeRGBA.argtypes = [
                    ctypes.c_char_p,
                    ctypes.c_size_t,
                    ctypes.POINTER(ctypes.c_int),
                    ctypes.POINTER(ctypes.c_int),
                ]
                lib.WebPFree.argtypes = [ctypes.c_void_p]
            except (OSError, AttributeError):
                continue
            _webp_lib = lib
            break
    return _webp_lib or None


def _validate_still_webp(
    data: bytes, canvas: tuple[int, int], rules: ImageRules, min_width: int, min_height: int, preview: bool
) -> Validation:
    """A still WebP decoded in full by libwebp straight into one buffer (4 bytes a
    pixel) that Pillow maps without a copy, instead of Pillow's animation decoder
    (~16 bytes a pixel): a 12 MP photo takes about 50 MB, not 190 MB. Every byte is
    decoded, as Pillow would; Pillow then only shrinks the result for the signature."""
    width, height = canvas
    if rules.formats and "webp" not in rules.formats:
        return Validation(False, "format_not_allowed", "webp", width, height)
    if width < min_width or height < min_height:
        return Validation(False, "too_small", "webp", width, height)
    if rules.animated or _wrong_layout(rules, width, height):  # a still WebP, one frame
        return Validation(False, "filter_mismatch", "webp", width, height)
    alpha = data[12:16] == b"VP8L" or (data[12:16] == b"VP8X" and bool(data[20] & 0x10))
    lib = _libwebp()
    assert lib is not None
    got_width, got_height = ctypes.c_int(), ctypes.c_int()
    with decode_budget().hold(width * height):
        # RGBA even without alpha: Pillow maps a 4-byte buffer in place (it would copy
        # 3-byte RGB into its own 4-byte layout).
        pixels = lib.WebPDecodeRGBA(data, len(data), ctypes.byref(got_width), ctypes.byref(got_height))
        if not pixels:
            return Validation(False, "truncated", "webp", width, height)
        try:
            if (got_width.value, got_height.value) != canvas:
                return Validation(False, "truncated", "webp", width, height)
            buffer = (ctypes.c_ubyte * (width * height * 4)).from_address(pixels)
            mode = "RGBA" if alpha else "RGBX"  # RGBX: shrunk without premultiplying
            img = Image.frombuffer(mode, canvas, buffer, "raw", mode, 0, 1)
            phash = signature(img)
            small = preview_jpeg(img) if preview else b""
            del img, buffer
        finally:
            lib.WebPFree(pixels)
    return Validation(True, "", "webp", width, height, phash, small, webp_chunk_rights(data))


def _tile_pixels(img: Image.Image) -> int:
    """The area a frame's tiles write (a GIF frame may claim more than its canvas)."""
    total = 0
    for tile in img.tile or ():
        box = tile[1]
        if box and len(box) == 4:
            total += max(0, box[2] - box[0]) * max(0, box[3] - box[1])
    return total


def _check_frames(img: Image.Image, max_pixels: int, held: Hold, deadline: float) -> None:
    """Decode every further frame (up to MAX_FRAMES_CHECKED). Each frame's size counts
    against ``max_pixels``, and so does the sum of the pixels decoded; the budget held
    grows to the largest frame; the deadline is checked between frames."""
    if not getattr(img, "is_animated", False) and getattr(img, "n_frames", 1) == 1:
        return
    decoded = img.size[0] * img.size[1]
    index = 1
    while index < MAX_FRAMES_CHECKED:
        if time.monotonic() > deadline:
            raise _Rejected("decode_timeout")
        try:
            img.seek(index)
        except EOFError:
            return
        frame = max(img.size[0] * img.size[1], _tile_pixels(img))
        decoded += frame
        if frame > max_pixels or decoded > max_pixels:
            raise _Rejected("too_many_pixels")
        held.grow(frame)
        img.load()
        index += 1
    if time.monotonic() > deadline:
        raise _Rejected("decode_timeout")


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
