"""Download a list of image URLs into a folder or a zip, the way img2dataset users work.

    python manage.py download_urls URLS.txt --out DIR_OR.zip [--min-size WxH]
        [--formats jpeg,png] [--concurrency N] [--per-host N] [--count N]
        [--pack zip|imagefolder|parquet|webdataset] [--shard-mb 256]   (a .zip --out)

URLS.txt holds one URL per line (blank lines and # comments are skipped; a second
tab- or comma-separated column is taken as the page URL). Every URL goes through the
same chokepoint, validation and de-duplication as a search request.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.core.files.storage import FileSystemStorage
from django.core.management.base import BaseCommand, CommandError, CommandParser

from downloader.collect import Candidate, CollectResult
from downloader.layouts import PackOptions
from downloader.management.commands._options import (
    ProgressBar,
    add_filter_arguments,
    add_pack_arguments,
    image_rules,
    pack_options,
    summary,
)


def read_url_file(path: Path) -> Iterator[Candidate]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            url, _, page = line.replace("\t", ",").partition(",")
            yield Candidate(url=url.strip(), page_url=page.strip())


class Command(BaseCommand):
    help = "Download, validate and de-duplicate the images listed in a file; write a folder or a zip."
    # Needs neither Cassandra nor mail: the web app's checks (a node to reach, a mail
    # host to set) would only slow the start and print warnings that do not apply.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("urls", help="text file, one URL per line")
        parser.add_argument("--out", required=True, help="a folder, or a file ending in .zip")
        parser.add_argument(
            "--count", type=int, default=0, help="stop after this many valid images (default: all)"
        )
        parser.add_argument(
            "--concurrency", type=int, default=0, help="downloads in flight (default: setting)"
        )
        parser.add_argument("--per-host", type=int, default=0, help="downloads in flight per host")
        parser.add_argument("--name", default="image", help="file name stem for the images")
        add_filter_arguments(parser)
        add_pack_arguments(parser)

    def handle(self, *args, **options) -> None:
        from downloader.collect import Collector
        from downloader.config import fetcher_from_settings, validation_limits_from_settings
        from downloader.validation import malloc_release

        source = Path(options["urls"])
        if not source.is_file():
            raise CommandError(f"{source} is not a file")
        wanted = options["count"] or sum(1 for _ in read_url_file(source))
        if wanted < 1:
            raise CommandError(f"{source} lists no URLs")
        rules = image_rules(options)
        pack = pack_options(options)
        out = Path(options["out"]).resolve()
        if pack.layout != "zip" and out.suffix.lower() != ".zip":
            raise CommandError("--pack needs --out to name a .zip file")
        fetcher = fetcher_from_settings(concurrency=options["concurrency"], per_host=options["per_host"])
        bar = ProgressBar(wanted, not options["no_progress"], self.stderr.write)
        work = Path(tempfile.mkdtemp(prefix="imagedl-urls-", dir=out.parent if out.parent.exists() else None))
        try:
            collector = Collector(
                wanted=wanted,
                workdir=work,
                rules=rules,
                progress=lambda kind, **info: bar.update(collector.counts),
                fetcher=fetcher,
                limits=validation_limits_from_settings(),
                previews=False,  # for the web's pages; a command writes files only
            )
            result = collector.run(read_url_file(source))
            bar.close()
            malloc_release()  # the packing starts from what is in use, not the download's peak
            size = self._write(result, out, options["name"], pack)
        finally:
            fetcher.close()
            shutil.rmtree(work, ignore_errors=True)
        self.stdout.write(summary(result, len(result.kept), out, size))

    def _write(self, result: CollectResult, out: Path, stem: str, pack: PackOptions) -> int:
        """Write the kept images as a zip or into a folder; returns the bytes written."""
        from downloader.archive import entry_names, write_archive

        if out.suffix.lower() == ".zip":
            out.parent.mkdir(parents=True, exist_ok=True)
            storage = FileSystemStorage(location=str(out.parent))
            return write_archive(result.kept, name_stem=stem, storage=storage, path=out.name, pack=pack).bytes
        out.mkdir(parents=True, exist_ok=True)
        names = entry_names(stem, [image.format for image in result.kept])
        for name, image in zip(names, result.kept, strict=True):
            shutil.move(image.path, out / name)
        return sum(image.bytes for image in result.kept)
