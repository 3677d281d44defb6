"""The delivered zip: images stored as they are (no re-compression), manifest.csv and
CREDITS.html (each image with its title and a link to the page it came from).

Entries are named after the query with zero-padded numbers (``red-fox_0001.jpg``).
Written in place when the storage has a local path, else to a temporary file first,
then saved through the storage (a Django storage fits ``Storage``: the media folder,
a bucket).
"""

from __future__ import annotations

import csv
import html
import io
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
from downloader.validation import EXTENSIONS

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = (
    "file",
    "source_url",
    "page_url",
    "width",
    "height",
    "format",
    "bytes",
    "sha256",
    # Credits (added at the end: readers of the first eight columns are unchanged).
    "caption",  # the engine's title, or the page's alt text, figure caption or title
    "host",  # the image's host
    "engine",  # bing, duckduckgo, google, page; empty for a URL list
    "rank",  # its place in the engine's results (or on the page), from 1
    "license",  # when the engine stated one
    "safe_search",  # the request's (empty for a page or a URL list)
    "filters",  # the request's engine filters, "layout=wide;license=cc" (empty: none)
)
CREDITS_NAME = "CREDITS.html"
NOT_IMAGES = frozenset({MANIFEST_NAME, CREDITS_NAME})  # every other entry is an image


def is_image_entry(name: str) -> bool:
    """True for the zip's images, False for its manifest and credits."""
    return name not in NOT_IMAGES


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
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(MANIFEST_COLUMNS)

    def pack(fh) -> int:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, image in zip(names, kept, strict=True):
                archive.write(Path(image.path), arcname=name)
                writer.writerow(_manifest_row(name, image, {"safe_search": safe_search, "filters": filters}))
            archive.writestr(MANIFEST_NAME, manifest.getvalue())
            archive.writestr(
                CREDITS_NAME, credits_html(names, kept, safe_search=safe_search, filters=filters)
            )
        return fh.tell()

    saved, size = _save(storage, path, pack, scratch)
    return ArchiveResult(path=saved, bytes=size, count=len(kept))


def _manifest_row(name: str, image: object, request: dict[str, str]) -> list[object]:
    """One image's manifest row: its own attributes, by column name, and the rest
    (``request``: the columns every row shares)."""
    source_url = str(getattr(image, "source_url", ""))
    derived = {
        "file": name,
        "host": urlsplit(source_url).hostname or "",
        "rank": getattr(image, "rank", 0) or "",
        "caption": caption_clean(getattr(image, "caption", "")),
        **request,
    }
    return [_as_text_cell(derived[c] if c in derived else getattr(image, c, "")) for c in MANIFEST_COLUMNS]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _as_text_cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, with a leading ' (OWASP's
    advice on CSV injection: titles and URLs come from strangers' pages)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


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
