"""The delivered zip: images stored as they are (no re-compression) plus manifest.csv.

Entries are named after the query with zero-padded numbers (``red-fox_0001.jpg``).
Written to a temporary file next to nothing personal, then saved through Django's
storage API (the local media folder by default).
"""

from __future__ import annotations

import csv
import io
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.core.files import File
from django.core.files.storage import Storage, default_storage
from django.utils.text import slugify

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
    "safe_search",  # the request's (empty for a page or a URL list)
)


@dataclass
class ArchiveResult:
    path: str
    bytes: int
    count: int


def file_stem(subject: str) -> str:
    """The file-name stem for what was asked (``red fox`` -> ``red-fox``): the zip's
    entries, the command's folder output and the downloaded zip's name use it."""
    return slugify(subject)[:60] or "images"


def entry_names(stem: str, formats: Sequence[str]) -> list[str]:
    stem = file_stem(stem)
    digits = max(4, len(str(len(formats))))
    return [f"{stem}_{n:0{digits}d}.{EXTENSIONS.get(fmt, fmt)}" for n, fmt in enumerate(formats, 1)]


def write_archive(
    kept: Sequence,
    *,
    name_stem: str,
    path: str,
    storage: Storage | None = None,
    safe_search: str = "",
) -> ArchiveResult:
    """Pack ``kept`` (objects with path, source_url, page_url, width, height, format,
    bytes, sha256) into a zip saved at ``path`` in ``storage``. ``safe_search`` is the
    search's setting, noted on every row."""
    storage = storage or default_storage
    names = entry_names(name_stem, [image.format for image in kept])
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(MANIFEST_COLUMNS)

    def pack(fh) -> int:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, image in zip(names, kept, strict=True):
                archive.write(Path(image.path), arcname=name)
                writer.writerow(
                    [
                        name,
                        image.source_url,
                        image.page_url,
                        image.width,
                        image.height,
                        image.format,
                        image.bytes,
                        image.sha256,
                        safe_search,
                    ]
                )
            archive.writestr(MANIFEST_NAME, manifest.getvalue())
        return fh.tell()

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
        return ArchiveResult(path=path, bytes=size, count=len(kept))
    with tempfile.TemporaryFile(suffix=".zip") as tmp:
        size = pack(tmp)
        tmp.seek(0)
        saved = storage.save(path, File(tmp, name=Path(path).name))
    return ArchiveResult(path=saved, bytes=size, count=len(kept))
