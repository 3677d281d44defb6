"""Check a delivered zip independently of the code that wrote it.

Every image entry is decoded in full with Pillow, its real format compared with its
extension, its sha256 and difference hash compared with every other entry, and the
manifest compared with the entries. Used by the benchmarks to back the claim "zero bad
files, zero duplicates, exact or near".
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from downloader.dedupe import NEAR_BITS, difference_hash

NOT_IMAGES = {"manifest.csv", "CREDITS.html"}  # every other entry must be an image
EXTENSION_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP", "tif": "TIFF"}


@dataclass
class Audit:
    images: int = 0
    bad: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    manifest_mismatches: int = 0

    def line(self) -> str:
        ok = not (self.bad or self.exact_duplicates or self.near_duplicates or self.manifest_mismatches)
        return (
            f"audit of the zip: {self.images} images, {self.bad} bad, {self.exact_duplicates} exact and "
            f"{self.near_duplicates} near duplicates, {self.manifest_mismatches} manifest mismatches"
            f" -> {'clean' if ok else 'NOT CLEAN'}"
        )


def audit_zip(path: Path) -> Audit:
    result = Audit()
    hashes: list[int] = []
    digests: set[str] = set()
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n not in NOT_IMAGES]
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
                    value = int(difference_hash(img), 16)
            except Exception:  # any failure to decode is a bad file
                result.bad += 1
                continue
            if any((value ^ other).bit_count() <= NEAR_BITS for other in hashes):
                result.near_duplicates += 1
            hashes.append(value)
    return result
