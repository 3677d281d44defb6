"""The delivered zip: images stored as they are (no re-compression), the manifest
(``downloader.manifest``: manifest.csv and manifest.jsonl) and CREDITS.html (each image
with its caption and a link to the page it came from).

Entries are named after the query with zero-padded numbers (``red-fox_0001.jpg``).
Written in place when the storage has a local path, else to a temporary file first,
then saved through the storage (a Django storage fits ``Storage``: the media folder,
a bucket).
"""

from __future__ import annotations

import html
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

from downloader.captions import caption_clean
from downloader.manifest import MANIFEST_CSV, MANIFEST_JSONL, manifest_csv, manifest_jsonl, manifest_row
from downloader.validation import EXTENSIONS

MANIFEST_NAME = MANIFEST_CSV
CREDITS_NAME = "CREDITS.html"
IMAGE_EXTENSIONS = frozenset(EXTENSIONS.values())


def is_image_entry(name: str) -> bool:
    """True for the images at the zip's root, False for its manifests, credits, card and
    the files of other layouts (Parquet files, shards)."""
    return "/" not in name and name.rpartition(".")[2] in IMAGE_EXTENSIONS


class Storage(Protocol):
    """Where archives are kept: what write_archive needs of a Django storage."""

    def exists(self, name: str) -> bool: ...

    def delete(self, name: str) -> None: ...

    def path(self, name: str) -> str:
        """The local file of ``name``; NotImplementedError when there is none (a bucket)."""
        ...

    def save(self, name: str, content: BinaryIO) -> str: ...


@dataclass
class ArchiveResult:
    path: str
    bytes: int
    count: int


def file_stem(subject: str) -> str:
    """The file-name stem for what was asked (``red fox`` -> ``red-fox``): the zip's
    entries, the command's folder output and the downloaded zip's name use it."""
    return _slug(subject)[:60] or "images"


def _slug(text: str) -> str:
    """ASCII letters, digits, _ and single dashes: ``Red Fox!`` -> ``red-fox`` (as
    Django's slugify)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    kept = re.sub(r"[^\w\s-]", "", ascii_text.lower())
    return re.sub(r"[-\s]+", "-", kept).strip("-_")


def entry_names(stem: str, formats: Sequence[str]) -> list[str]:
    stem = file_stem(stem)
    digits = max(4, len(str(len(formats))))
    return [f"{stem}_{n:0{digits}d}.{EXTENSIONS.get(fmt, fmt)}" for n, fmt in enumerate(formats, 1)]


CREDITS_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Credits</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:1rem;color:#1d2330}
li{margin:0 0 .6rem;overflow-wrap:anywhere}small{color:#5b6475}</style></head><body>
<h1>Credits</h1>
<p>Where each image in this archive was found. The images belong to their publishers:
check each one's license before you reuse it.</p>
"""


def http_link(url: str) -> str | None:
    """``url`` when it is an absolute http(s) link with a host, else None."""
    if not url or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.hostname else None


def credits_html(names: Sequence[str], kept: Sequence, *, safe_search: str = "", filters: str = "") -> str:
    """CREDITS.html: each image, its title, and a link to its page (or, without one, to
    the image). Every text is escaped; only http(s) URLs become links."""
    esc = html.escape
    out = [CREDITS_HEAD]
    if safe_search:
        out.append(f"<p>Safe search: {esc(safe_search)}.</p>\n")
    if filters:
        out.append(f"<p>Engine filters: {esc(filters)}.</p>\n")
    out.append("<ol>\n")
    for name, image in zip(names, kept, strict=True):
        title = caption_clean(getattr(image, "caption", "")) or name
        target = http_link(image.page_url) or http_link(image.source_url)
        host = urlsplit(target).hostname if target else ""
        where = (
            f'<a href="{esc(target)}" rel="nofollow noopener noreferrer">{esc(host or target)}</a>'
            if target
            else "source unknown"
        )
        notes = [f"{esc(getattr(image, 'engine', '') or '')}"]
        if getattr(image, "license", ""):
            notes.append(f"license: {esc(image.license)}")
        detail = " · ".join(note for note in notes if note)
        out.append(
            f'<li><a href="{esc(name)}">{esc(name)}</a>: {esc(title)}, from {where}'
            + (f" <small>({detail})</small>" if detail else "")
            + "</li>\n"
        )
    out.append("</ol>\n</body></html>\n")
    return "".join(out)


def write_archive(
    kept: Sequence,
    *,
    name_stem: str,
    path: str,
    storage: Storage,
    safe_search: str = "",
    filters: str = "",
    scratch: Path | None = None,
) -> ArchiveResult:
    """Pack ``kept`` (objects with path, source_url, page_url, width, height, format,
    bytes, sha256) into a zip saved at ``path`` in ``storage``. ``safe_search`` and
    ``filters`` (``Filters.as_text()``) are the search's settings, noted on every row.
    A storage with no local path (a bucket) gets the zip built first in the folder
    ``scratch`` (else a temporary file), then stored."""
    names = entry_names(name_stem, [image.format for image in kept])
    shared = {"safe_search": safe_search, "filters": filters}
    rows = [manifest_row(name, image, shared) for name, image in zip(names, kept, strict=True)]

    def pack(fh) -> int:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, image in zip(names, kept, strict=True):
                archive.write(Path(image.path), arcname=name)
            archive.writestr(MANIFEST_CSV, manifest_csv(rows))
            archive.writestr(MANIFEST_JSONL, manifest_jsonl(rows))
            archive.writestr(
                CREDITS_NAME, credits_html(names, kept, safe_search=safe_search, filters=filters)
            )
        return fh.tell()

    saved, size = _save(storage, path, pack, scratch)
    return ArchiveResult(path=saved, bytes=size, count=len(kept))


def _save(
    storage: Storage, path: str, pack: Callable[[BinaryIO], int], scratch: Path | None = None
) -> tuple[str, int]:
    """Write the zip with ``pack`` and save it at ``path``; its stored path and size."""
    if storage.exists(path):
        storage.delete(path)
    try:
        target = Path(storage.path(path))
    except NotImplementedError:
        target = None
    if target is not None:
        # Local storage: write the zip in place (beside its final name) instead of
        # writing it once to a temporary file and copying hundreds of MB again.
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        with open(partial, "wb") as fh:
            size = pack(fh)
        partial.replace(target)
        return path, size
    if scratch is not None:
        built = Path(scratch) / (Path(path).name + ".partial")
        try:
            with open(built, "w+b") as fh:
                size = pack(fh)
                fh.seek(0)
                return storage.save(path, fh), size
        finally:
            built.unlink(missing_ok=True)
    with tempfile.TemporaryFile(suffix=".zip") as tmp:
        size = pack(tmp)
        tmp.seek(0)
        return storage.save(path, tmp), size
