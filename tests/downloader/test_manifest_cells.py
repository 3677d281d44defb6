"""manifest.csv opened in a spreadsheet runs no formula: a cell that starts with =,
+, -, @, a tab or a carriage return (a title from a page, say) is written with a
leading ' (OWASP, CSV injection); numbers and plain text are written as they are."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from django.core.files.storage import FileSystemStorage

from downloader.archive import write_archive
from downloader.collect import KeptImage
from tests.imagehosts import encoded

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1)", "\tindent", "\rreturn"]


def kept_image(path: Path, n: int, **fields: object) -> KeptImage:
    data = encoded(n, "jpeg", 200, 150)
    path.write_bytes(data)
    values = dict(source_url=f"http://img.example/{n}.jpg", width=200, height=150, format="jpeg")
    return KeptImage(path=path, bytes=len(data), sha256="0" * 64, **{**values, **fields})


def manifest_of(archive_path: Path) -> list[dict]:
    with zipfile.ZipFile(archive_path) as zf:
        return list(csv.DictReader(io.StringIO(zf.read("manifest.csv").decode())))


def test_cells_that_a_spreadsheet_would_run_are_written_as_text(tmp_path):
    kept = [
        kept_image(
            tmp_path / str(n), n, caption=title, license="CC BY 4.0", page_url=f"https://p.example/{n}"
        )
        for n, title in enumerate([*FORMULAS, "Red fox", "a=b"], 1)
    ]
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    archive = write_archive(kept, name_stem="=cmd", path="a.zip", storage=storage, safe_search="strict")
    rows = manifest_of(Path(storage.path(archive.path)))
    # (captions lose their tabs and carriage returns: whitespace is collapsed)
    assert [row["caption"] for row in rows] == [
        *("'" + f for f in FORMULAS[:4]),
        "indent",
        "return",
        "Red fox",
        "a=b",
    ]
    assert rows[0]["width"] == "200" and rows[0]["license"] == "CC BY 4.0"
    for row in rows:
        assert not any(str(value).startswith(("=", "+", "-", "@", "\t", "\r")) for value in row.values())
