"""De-duplication: exact (sha256 of the bytes) and perceptual (a 64-bit difference hash).

The difference hash compares neighbouring pixels of a 9x8 greyscale thumbnail, so
re-encodes, resizes and small colour shifts of one picture land within a few bits of
each other while different pictures differ in many.
"""

from __future__ import annotations

import threading

from PIL import Image

NEAR_BITS = 4  # re-encodes and resizes measure 0-2 bits; distinct pictures rarely come within 6


def difference_hash(img: Image.Image) -> str:
    # Shrink first, then go grey: converting a 9x8 image instead of the full one. The
    # reducing gap shrinks by whole factors first, much cheaper on large images.
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA" if "transparency" in img.info or img.mode.endswith("A") else "RGB")
    small = img.resize((9, 8), Image.Resampling.BILINEAR, reducing_gap=2.0).convert("L")
    pixels = list(small.get_flattened_data() if hasattr(small, "get_flattened_data") else small.getdata())
    bits = 0
    for row in range(8):
        for col in range(8):
            left = pixels[row * 9 + col]
            right = pixels[row * 9 + col + 1]
            bits = (bits << 1) | (1 if left > right else 0)
    return f"{bits:016x}"


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


class NearIndex:
    """64-bit hashes, searchable for any within ``bits`` of a new one without a scan.

    Split every hash into ``bits + 1`` bands: two hashes that differ in at most
    ``bits`` bits agree exactly on at least one band (pigeonhole), so only the hashes
    sharing a band with the new one are measured.
    """

    def __init__(self, bits: int) -> None:
        if not 0 <= bits < 64:
            raise ValueError("near_bits must be from 0 to 63")
        self.bits = bits
        bands = bits + 1
        width = -(-64 // bands)
        self._bands = [(shift, (1 << min(width, 64 - shift)) - 1) for shift in range(0, 64, width)]
        self._tables: list[dict[int, list[int]]] = [{} for _ in self._bands]

    def near(self, value: int) -> bool:
        for (shift, mask), table in zip(self._bands, self._tables, strict=True):
            for seen in table.get((value >> shift) & mask, ()):
                if (value ^ seen).bit_count() <= self.bits:
                    return True
        return False

    def add(self, value: int) -> None:
        for (shift, mask), table in zip(self._bands, self._tables, strict=True):
            table.setdefault((value >> shift) & mask, []).append(value)


class DuplicateFilter:
    """Remembers what was kept; answers whether a new image repeats one of them."""

    def __init__(self, near_bits: int = NEAR_BITS) -> None:
        self.near_bits = near_bits
        self._sha: set[str] = set()
        self._near = NearIndex(near_bits)
        self._lock = threading.Lock()

    def check_and_add(self, sha256: str, phash: str) -> str | None:
        """Return ``duplicate_exact``/``duplicate_near``, or None after remembering it."""
        value = int(phash, 16) if phash else None
        with self._lock:
            if sha256 in self._sha:
                return "duplicate_exact"
            if value is not None and self._near.near(value):
                return "duplicate_near"
            self._sha.add(sha256)
            if value is not None:
                self._near.add(value)
        return None

    def seen_sha(self, sha256: str) -> bool:
        with self._lock:
            return sha256 in self._sha
