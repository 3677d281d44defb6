"""De-duplication: exact (sha256 of the bytes) and near (a colour thumbnail compared
in two steps).

An image's signature is its 16x16 RGB thumbnail (box-averaged, transparency over
white), stored as text in ``KeptImage.phash``. Two images are near duplicates when

1. a scan of every kept image proposes them: the mean absolute difference of their
   8x8 thumbnails is at most ``SCAN_LIMIT`` (a Pillow operation over all kept
   thumbnails at once, so the scan runs in C and misses nothing), and
2. an aligned comparison confirms it: the 16x16 thumbnails, one of them cropped by
   0, 2.5 or 5% on each side, compared at 12x12; the best alignment's mean absolute
   difference is at most ``CONFIRM_LIMIT``.

Colour and intensity are kept, not just the sign of gradients: the 64-bit difference
hash used before merged distinct pictures whose flat or smoothly shaded areas gave
the same bits. Re-encodes, resizes, format changes (GIF's palette included) measure
0-3 on this scale and crops of up to 5% 2-6 after alignment; distinct pictures of the
benchmark corpora stay above 14.

Which copy survives does not depend on arrival order: when a near duplicate arrives
that ranks higher than the kept one (more pixels, then more bytes, then the larger
sha256 as a tie-break), it replaces it (``Verdict.replaces``). Within a group of
copies that all match each other, the best one is kept whatever order they came in,
among those that arrived before the run had enough images.
"""

from __future__ import annotations

import base64
import itertools
import threading
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageChops

SIGNATURE_PREFIX = "t16:"
# The signature method's version: stored with signatures that outlive a run (a
# series' delivered images), so a later change of method never compares across
# versions. Change it whenever ``signature`` or the limits below change.
SIGNATURE_METHOD = "t16-scan14-confirm8-v1"
SIDE = 16  # the stored thumbnail
SCAN_SIDE = 8  # the thumbnail scanned against every kept image
SCAN_LIMIT = 14  # mean absolute difference per channel, 0-255
CONFIRM_SIDE = 12
CONFIRM_LIMIT = 8.0
# Crop hypotheses, in pixels of the 16x16 thumbnail: 0, 2.5% and 5% of a side.
_OFFSETS = (0.0, SIDE * 0.025, SIDE * 0.05)
_BOXES = [
    (left, top, SIDE - right, SIDE - bottom)
    for left, top, right, bottom in itertools.product(_OFFSETS, repeat=4)
]


def signature(img: Image.Image) -> str:
    """The near-duplicate signature of a decoded image (any mode, any size)."""
    has_alpha = img.mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in img.info
    if img.mode in ("RGB", "RGBX", "L") and not has_alpha:
        # Shrink first, then convert: no full-size copy.
        small = img.resize((SIDE, SIDE), Image.Resampling.BOX, reducing_gap=2.0).convert("RGB")
    else:
        if img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA" if has_alpha else "RGB")
        small = img.resize((SIDE, SIDE), Image.Resampling.BOX, reducing_gap=2.0)
        if small.mode == "RGBA":
            white = Image.new("RGBA", small.size, (255, 255, 255, 255))
            small = Image.alpha_composite(white, small).convert("RGB")
    return SIGNATURE_PREFIX + base64.b64encode(small.tobytes()).decode("ascii")


def thumbnail(value: str) -> Image.Image | None:
    """The thumbnail in a signature; None for an empty or older (64-bit hash) value."""
    if not value.startswith(SIGNATURE_PREFIX):
        return None
    try:
        data = base64.b64decode(value[len(SIGNATURE_PREFIX) :], validate=True)
    except ValueError:
        return None
    if len(data) != SIDE * SIDE * 3:
        return None
    return Image.frombytes("RGB", (SIDE, SIDE), data)


def dhash(value: str) -> str:
    """A 64-bit difference hash (dHash: each of 8 rows of 9 grey cells, 1 where a cell
    is brighter than its right neighbour) of the thumbnail in a signature, as 16 hex
    digits: the perceptual hash the manifest publishes (comparable with other tools'
    dHash by Hamming distance). "" without a thumbnail."""
    thumb = thumbnail(value)
    if thumb is None:
        return ""
    grey = thumb.convert("L").resize((9, 8), Image.Resampling.BOX).tobytes()
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (grey[row * 9 + col] > grey[row * 9 + col + 1])
    return f"{bits:016x}"


def _scan_tile(thumb: Image.Image) -> bytes:
    return thumb.resize((SCAN_SIDE, SCAN_SIDE), Image.Resampling.BOX).tobytes()


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    """The mean absolute difference of two RGB images, per channel, averaged over the
    channels (ImageStat's figures, from the bytes: no histogram walked in Python)."""
    data = ImageChops.difference(a, b).tobytes()
    pixels = len(data) // 3
    return sum([sum(data[band::3]) / pixels for band in range(3)]) / 3


def aligned_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two thumbnails at the best crop alignment of either."""
    best = 255.0
    for x, y in ((a, b), (b, a)):
        whole = y.resize((CONFIRM_SIDE, CONFIRM_SIDE), Image.Resampling.BOX)
        for box in _BOXES:
            part = x.resize((CONFIRM_SIDE, CONFIRM_SIDE), Image.Resampling.BOX, box=box)
            best = min(best, _mean_difference(part, whole))
    return best


_BLOCK = 256  # tiles per block of the scan


class _Scan:
    """8x8 thumbnails of the kept images, measured against a new one in a few passes
    of C: the kept tiles are greyscale images (blocks of 256 tiles, one under the
    other) whose bytes are the RGB values; their difference from the new tile
    repeated, reduced to one value per tile (the mean, rounded), is each kept image's
    mean absolute difference; only the few within the limit are looked at in Python."""

    def __init__(self) -> None:
        self._blocks: list[Image.Image] = []
        self._count = 0
        self._near_tables: dict[int, bytes] = {}

    def __len__(self) -> int:
        return self._count

    def add(self, tile: bytes) -> int:
        slot = self._count
        if slot % _BLOCK == 0:
            self._blocks.append(Image.new("L", (SCAN_SIDE * 3, SCAN_SIDE * _BLOCK)))
        self._count += 1
        self.put(slot, tile)
        return slot

    def put(self, slot: int, tile: bytes) -> None:
        block = self._blocks[slot // _BLOCK]
        block.paste(Image.frombytes("L", (SCAN_SIDE * 3, SCAN_SIDE), tile), (0, (slot % _BLOCK) * SCAN_SIDE))

    def _table(self, limit: int) -> bytes:
        """Maps a mean to 1 when it is within ``limit``, else to 0."""
        table = self._near_tables.get(limit)
        if table is None:
            table = self._near_tables[limit] = bytes(int(v <= limit) for v in range(256))
        return table

    def near(self, tile: bytes, limit: int) -> list[int]:
        if not self._count:
            return []
        repeated = Image.frombytes("L", (SCAN_SIDE * 3, SCAN_SIDE * _BLOCK), tile * _BLOCK)
        table = self._table(limit)
        found = []
        for index, block in enumerate(self._blocks):
            difference = ImageChops.difference(block, repeated)
            within = difference.reduce((SCAN_SIDE * 3, SCAN_SIDE)).tobytes().translate(table)
            first = index * _BLOCK
            row = within.find(1)
            while row >= 0 and first + row < self._count:
                found.append(first + row)
                row = within.find(1, row + 1)
        return found


@dataclass(frozen=True)
class Verdict:
    """``reason`` is None to keep the new image; ``replaces`` is then the item of a
    kept near duplicate it outranks (to be dropped), or None."""

    reason: str | None = None
    replaces: Any = None


def _outranks(new: tuple, kept: tuple) -> bool:
    try:
        return new > kept
    except TypeError:  # ranked differently (a copy remembered without a rank): keep it
        return False


@dataclass
class _Entry:
    thumb: Image.Image
    rank: tuple
    item: Any


class DuplicateFilter:
    """Remembers what was kept; answers whether a new image repeats one of them."""

    def __init__(self, scan_limit: int = SCAN_LIMIT, confirm_limit: float = CONFIRM_LIMIT) -> None:
        self.scan_limit = scan_limit
        self.confirm_limit = confirm_limit
        self._sha: set[str] = set()
        self._scan = _Scan()
        self._entries: list[_Entry] = []
        self._lock = threading.Lock()

    def offer(self, sha256: str, phash: str, rank: tuple | None = None, item: Any = None) -> Verdict:
        """Judge a new image. ``rank`` orders copies of one picture (higher is better;
        the sha256 is appended as the tie-break); ``item`` is returned as
        ``replaces`` if a better copy arrives later. Without a rank the first copy
        stays."""
        thumb = thumbnail(phash) if phash else None
        replaceable = rank is not None
        rank = (*(rank or ()), sha256)
        with self._lock:
            if sha256 in self._sha:
                return Verdict("duplicate_exact")
            match: _Entry | None = None
            slot = -1
            if thumb is not None:
                tile = _scan_tile(thumb)
                best = self.confirm_limit
                for candidate in self._scan.near(tile, self.scan_limit):
                    distance = aligned_difference(thumb, self._entries[candidate].thumb)
                    if distance <= best:
                        best, match, slot = distance, self._entries[candidate], candidate
            if match is not None and (not replaceable or not _outranks(rank, match.rank)):
                return Verdict("duplicate_near")
            self._sha.add(sha256)
            if thumb is None:
                return Verdict()
            entry = _Entry(thumb, rank, item)
            if match is None:
                self._scan.add(tile)
                self._entries.append(entry)
                return Verdict()
            self._scan.put(slot, tile)
            self._entries[slot] = entry
            return Verdict(replaces=match.item)

    def match(self, sha256: str, phash: str) -> str | None:
        """``duplicate_exact``/``duplicate_near`` when the image repeats one remembered,
        else None; remembers nothing (a read-only question)."""
        thumb = thumbnail(phash) if phash else None
        with self._lock:
            if sha256 in self._sha:
                return "duplicate_exact"
            if thumb is None:
                return None
            for candidate in self._scan.near(_scan_tile(thumb), self.scan_limit):
                if aligned_difference(thumb, self._entries[candidate].thumb) <= self.confirm_limit:
                    return "duplicate_near"
        return None

    def remember_sha(self, sha256: str) -> None:
        """Remember an exact copy only (a signature of another method's version)."""
        with self._lock:
            self._sha.add(sha256)

    def check_and_add(self, sha256: str, phash: str) -> str | None:
        """``duplicate_exact``/``duplicate_near``, or None after remembering it (the
        first copy wins: no ranks)."""
        return self.offer(sha256, phash).reason

    def __len__(self) -> int:
        """How many distinct images (by sha256) it remembers."""
        with self._lock:
            return len(self._sha)

    def seen_sha(self, sha256: str) -> bool:
        with self._lock:
            return sha256 in self._sha
