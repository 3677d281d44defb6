"""The manifest: one row per delivered image, the same fields in every layout.

``docs/manifest.schema.json`` (JSON Schema 2020-12) describes a row: names, types,
units and which may be empty. ``manifest.csv``, ``manifest.jsonl``, the image folder's
``metadata.jsonl``, the Parquet columns and each WebDataset sample's JSON carry exactly
MANIFEST_FIELDS, in this order (a test holds the schema and this tuple together).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from downloader.captions import caption_clean
from downloader.dedupe import dhash

STRING, INTEGER, OPTIONAL_INTEGER = "string", "integer", "optional integer"
# name -> kind. The first eight are the columns manifest.csv always began with.
MANIFEST_FIELDS: dict[str, str] = {
    "file": STRING,  # the image's name in the delivery (red-fox_0001.jpg)
    "source_url": STRING,
    "page_url": STRING,  # "" when unknown
    "width": INTEGER,  # pixels
    "height": INTEGER,  # pixels
    "format": STRING,  # jpeg, png, webp, gif, bmp, tiff
    "bytes": INTEGER,  # the file's size
    "sha256": STRING,  # of the file's bytes, hex
    "caption": STRING,  # plain text, at most 500 characters (downloader.captions)
    "host": STRING,  # the source URL's host
    "engine": STRING,  # bing, duckduckgo, google, page; "" for a URL list
    "rank": OPTIONAL_INTEGER,  # its place in the engine's results (or on the page), from 1
    "license": STRING,  # a license the image itself (XMP) or its page states (downloader.rights)
    "safe_search": STRING,  # the request's: strict, moderate, off; "" for a page or a URL list
    "filters": STRING,  # the request's engine filters, "layout=wide;license=cc"; "" none
    "dhash": STRING,  # a 64-bit perceptual hash (dHash), 16 hex digits (downloader.dedupe)
    "license_from": STRING,  # where the license was stated: image, page; "" none
    "creator": STRING,  # XMP dc:creator, IPTC By-line, EXIF Artist, else the page's creator
    "copyright": STRING,  # XMP dc:rights, IPTC Copyright Notice, EXIF Copyright
    "licensor": STRING,  # XMP plus:Licensor (its name, else its URL)
}
MANIFEST_COLUMNS: tuple[str, ...] = tuple(MANIFEST_FIELDS)
MANIFEST_CSV = "manifest.csv"
MANIFEST_JSONL = "manifest.jsonl"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def manifest_row(name: str, image: object, shared: Mapping[str, str]) -> dict[str, object]:
    """One image's row, typed as the schema says: its own attributes by field name,
    what is derived (file, host, caption) and ``shared`` (the fields every row of a
    request has: safe_search, filters)."""
    source_url = str(getattr(image, "source_url", "") or "")
    derived: dict[str, object] = {
        "file": name,
        "host": urlsplit(source_url).hostname or "",
        "caption": caption_clean(getattr(image, "caption", "")),
        "rank": getattr(image, "rank", 0) or None,
        "dhash": dhash(str(getattr(image, "phash", "") or "")),
        **shared,
    }
    row: dict[str, object] = {}
    for field, kind in MANIFEST_FIELDS.items():
        value = derived[field] if field in derived else getattr(image, field, None)
        if kind == STRING:
            row[field] = str(value or "")
        elif kind == INTEGER:
            row[field] = int(value or 0)
        else:
            row[field] = int(value) if value else None
    return row


def manifest_csv(rows: Iterable[Mapping[str, object]]) -> str:
    """manifest.csv: a header of MANIFEST_COLUMNS, then each row (no value: an empty
    cell; text a spreadsheet would run as a formula gets a leading ')."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(MANIFEST_COLUMNS)
    for row in rows:
        writer.writerow([_as_text_cell(row[field]) for field in MANIFEST_COLUMNS])
    return out.getvalue()


def manifest_jsonl(rows: Iterable[Mapping[str, object]], **extra_fields: str) -> str:
    """One JSON object a line; ``extra_fields`` name further fields copied from others
    (``file_name="file"``: the image folder's metadata)."""
    lines = []
    for row in rows:
        record = {**{new: row[old] for new, old in extra_fields.items()}, **row}
        lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
    return "".join(line + "\n" for line in lines)


def _as_text_cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula, with a leading ' (OWASP's
    advice on CSV injection: captions and URLs come from strangers' pages)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
