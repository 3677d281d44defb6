"""The delivered zip: one file whatever the layout (``downloader.layouts``: the images
at its root, a Hugging Face image folder, Parquet files or WebDataset shards), with
manifest.csv (``downloader.manifest``), CREDITS.html (each image with its caption and
a link to the page it came from) and a dataset card, README.md (``downloader.card``).
Images are stored as they are (no re-compression).

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

from downloader.card import CARD_NAME, CardFacts, dataset_card, license_filter
from downloader.layouts import Entry, PackOptions, layout_write
from downloader.manifest import MANIFEST_CSV, manifest_row
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


def credits_html(
    rows: Sequence[Mapping[str, object]], *, linked: bool = True, safe_search: str = "", filters: str = ""
) -> str:
    """CREDITS.html: each image (``rows``: its manifest rows), its caption, and a link to
    its page (or, without one, to the image). Every text is escaped; only http(s) URLs
    become links; ``linked``: the images are files beside it (else their names are text)."""
    esc = html.escape
    out = [CREDITS_HEAD]
    if safe_search:
        out.append(f"<p>Safe search: {esc(safe_search)}.</p>\n")
    if filters:
        out.append(f"<p>Engine filters: {esc(filters)}.</p>\n")
    out.append("<ol>\n")
    filtered = license_filter(filters)
    for row in rows:
        name = str(row["file"])
        title = str(row.get("caption") or "") or name
        target = http_link(str(row.get("page_url") or "")) or http_link(str(row.get("source_url") or ""))
        host = urlsplit(target).hostname if target else ""
        where = (
            f'<a href="{esc(target)}" rel="nofollow noopener noreferrer">{esc(host or target)}</a>'
            if target
            else "source unknown"
        )
        notes = [str(row.get("engine") or ""), *_rights_notes(row, filtered)]
        detail = " · ".join(esc(note) for note in notes if note)
        label = f'<a href="{esc(name)}">{esc(name)}</a>' if linked else esc(name)
        out.append(
            f"<li>{label}: {esc(title)}, from {where}"
            + (f" <small>({detail})</small>" if detail else "")
            + "</li>\n"
        )
    out.append("</ol>\n</body></html>\n")
    return "".join(out)


def _rights_notes(row: Mapping[str, object], filtered: str) -> list[str]:
    """What is known of an image's rights, each from where it was stated; the engine's
    license filter is noted as a filter, never as the image's license."""
    notes = []
    if row.get("license"):
        notes.append(f"license: {row['license']} (stated by the {row.get('license_from') or 'source'})")
    for name in ("creator", "copyright", "licensor"):
        if row.get(name):
            notes.append(f"{name}: {row[name]}")
    if filtered:
        notes.append(f"filtered: {filtered}")
    return notes


def write_archive(
    kept: Sequence,
    *,
    name_stem: str,
    path: str,
    storage: Storage,
    safe_search: str = "",
    filters: str = "",
    scratch: Path | None = None,
    pack: PackOptions | None = None,
    subject: str = "",
    from_page: bool = False,
) -> ArchiveResult:
    """Pack ``kept`` (objects with path, source_url, page_url, width, height, format,
    bytes, sha256 and the credits of ``downloader.collect.KeptImage``) into one zip
    saved at ``path`` in ``storage``, in the layout ``pack`` says (default: the images
    at its root), with manifest.csv, CREDITS.html and a dataset card, README.md.
    ``safe_search`` and ``filters`` (``Filters.as_text()``) are the search's settings,
    noted on every row; ``subject`` (the query, or the page URL when ``from_page``) is
    named in the card. A storage with no local path (a bucket) gets the zip built first
    in the folder ``scratch`` (else a temporary file), then stored."""
    options = pack or PackOptions()
    names = entry_names(name_stem, [image.format for image in kept])
    shared = {"safe_search": safe_search, "filters": filters}
    entries = [
        Entry(name, Path(image.path), manifest_row(name, image, shared))
        for name, image in zip(names, kept, strict=True)
    ]
    rows = [entry.row for entry in entries]
    facts = CardFacts(options.layout, subject, from_page, safe_search, filters)

    def write(fh) -> int:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            linked = layout_write(archive, entries, options)
            credits = credits_html(rows, linked=linked, safe_search=safe_search, filters=filters)
            archive.writestr(CREDITS_NAME, credits)
            archive.writestr(CARD_NAME, dataset_card(rows, facts))
        return fh.tell()

    saved, size = _save(storage, path, write, scratch)
    return ArchiveResult(path=saved, bytes=size, count=len(kept))


def _save(
    storage: Storage, path: str, pack: Callable[[BinaryIO], int], scratch: Path | None = None
) -> tuple[str, int]:
    """Write the zip with ``pack`` and save it at ``path``; its stored path and size."""
    try:
        target = Path(storage.path(path))
    except NotImplementedError:
        target = None
    # A storage that saves a taken name under another one (Django's) loses the old file
    # first; one that overwrites (django-storages' ``file_overwrite``: a bucket) is not
    # asked, since asking a bucket costs a request.
    if not getattr(storage, "file_overwrite", False) and storage.exists(path):
        storage.delete(path)
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
