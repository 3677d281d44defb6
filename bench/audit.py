"""Check a delivered zip independently of the code that wrote it.

Every image entry is decoded in full with Pillow, its real format compared with its
extension, its sha256 compared with every other entry, and the manifest compared with
the entries. Near duplicates are judged by a method of the audit's own, not the
engine's: a 256-bit difference hash (grey gradients on a 17x16 grid) proposes pairs
within AUDIT_BITS, and a pixel comparison of the two pictures at 64x64 in colour
(mean absolute difference at most AUDIT_PIXELS, at the best of a few crop
alignments) decides. With the list of URLs that went in (every one a distinct
picture in the benchmarks), each URL missing from the zip is looked up the same way:
if nothing in the zip matches it, the engine merged a distinct picture (a false
merge).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageStat

from downloader.archive import is_image_entry

EXTENSION_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP", "tif": "TIFF"}
AUDIT_BITS = 40  # of 256: proposes re-encodes, resizes and small crops
AUDIT_PIXELS = 10.0  # mean absolute difference, 0-255, at 64x64
_SIDE = 64
_CUTS = (0.0, _SIDE * 0.05)
_BOXES = [(a, b, _SIDE - c, _SIDE - d) for a, b, c, d in itertools.product(_CUTS, repeat=4)]


@dataclass
class Audit:
    images: int = 0
    bad: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    manifest_mismatches: int = 0
    missing: int = 0  # URLs given that are not in the zip
    false_merges: int = 0  # of those, matching nothing in the zip

    def line(self) -> str:
        ok = not (
            self.bad
            or self.exact_duplicates
            or self.near_duplicates
            or self.manifest_mismatches
            or self.false_merges
        )
        return (
            f"audit of the zip: {self.images} images, {self.bad} bad, {self.exact_duplicates} exact and "
            f"{self.near_duplicates} near duplicates, {self.manifest_mismatches} manifest mismatches; "
            f"{self.missing} inputs missing, {self.false_merges} of them false merges"
            f" -> {'clean' if ok else 'NOT CLEAN'}"
        )


@dataclass
class _Look:
    bits: int
    pixels: Image.Image


def _look(img: Image.Image) -> _Look:
    rgb = img.convert("RGBA").convert("RGB") if img.mode not in ("RGB", "L") else img.convert("RGB")
    grey = rgb.resize((17, 16), Image.Resampling.LANCZOS).convert("L").tobytes()
    bits = 0
    for row in range(16):
        for col in range(16):
            bits = (bits << 1) | (grey[row * 17 + col] > grey[row * 17 + col + 1])
    return _Look(bits, rgb.resize((_SIDE, _SIDE), Image.Resampling.LANCZOS))


def _same_picture(a: _Look, b: _Look) -> bool:
    if (a.bits ^ b.bits).bit_count() > AUDIT_BITS:
        return False
    for x, y in ((a.pixels, b.pixels), (b.pixels, a.pixels)):
        for box in _BOXES:
            part = x.resize((32, 32), Image.Resampling.BOX, box=box)
            whole = y.resize((32, 32), Image.Resampling.BOX)
            if sum(ImageStat.Stat(ImageChops.difference(part, whole)).mean) / 3 <= AUDIT_PIXELS:
                return True
    return False


def audit_zip(
    path: Path, inputs: list[str] | None = None, source: Callable[[str], bytes | None] | None = None
) -> Audit:
    """``inputs`` the URLs that went in; ``source(url)`` their bytes (for false merges)."""
    result = Audit()
    looks: list[_Look] = []
    digests: set[str] = set()
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if is_image_entry(n)]  # the zip layout's images
        manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
        by_file = {row["file"]: row for row in manifest}
        result.manifest_mismatches += abs(len(manifest) - len(names))
        for name in names:
            data = archive.read(name)
            result.images += 1
            digest = hashlib.sha256(data).hexdigest()
            row = by_file.get(name)
            if row is None or row["sha256"] != digest or int(row["bytes"]) != len(data):
                result.manifest_mismatches += 1
            if digest in digests:
                result.exact_duplicates += 1
            digests.add(digest)
            try:
                with Image.open(io.BytesIO(data)) as img:
                    img.load()
                    expected = EXTENSION_FORMATS.get(name.rsplit(".", 1)[-1])
                    if img.format != expected:
                        result.bad += 1
                        continue
                    look = _look(img)
            except Exception:  # any failure to decode is a bad file
                result.bad += 1
                continue
            if any(_same_picture(look, other) for other in looks):
                result.near_duplicates += 1
            looks.append(look)
    if inputs is not None and source is not None:
        delivered = {row.get("source_url", "") for row in manifest}
        for url in inputs:
            if url in delivered:
                continue
            result.missing += 1
            data = source(url)
            if data is None:
                continue
            with Image.open(io.BytesIO(data)) as img:
                look = _look(img)
            if not any(_same_picture(look, other) for other in looks):
                result.false_merges += 1
    return result
