"""manifest.csv opened in a spreadsheet runs no formula: a cell that starts with =,
+, -, @, a tab or a carriage return (a title from a page, say) is written with a
leading ' (OWASP, CSV injection); numbers and plain text are written as they are."""

from __future__ import annotations

from pathlib import Path

from django.core.files.storage import FileSystemStorage

from downloader.archive import write_archive
from tests.jobs.core.test_credits import kept_image, read_zip

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1)", "\tindent", "\rreturn"]


def test_cells_that_a_spreadsheet_would_run_are_written_as_text(tmp_path):
    kept = [
        kept_image(tmp_path / str(n), n, title=title, license="CC BY 4.0", page_url=f"https://p.example/{n}")
        for n, title in enumerate([*FORMULAS, "Red fox", "a=b"], 1)
    ]
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    archive = write_archive(kept, name_stem="=cmd", path="a.zip", storage=storage, safe_search="strict")
    _names, rows, _page = read_zip(Path(storage.path(archive.path)).read_bytes())
    assert [row["title"] for row in rows] == [*("'" + f for f in FORMULAS), "Red fox", "a=b"]
    assert rows[0]["width"] == "200" and rows[0]["license"] == "CC BY 4.0"
    for row in rows:
        assert not any(str(value).startswith(("=", "+", "-", "@", "\t", "\r")) for value in row.values())
