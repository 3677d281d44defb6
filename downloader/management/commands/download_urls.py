"""Download a list of image URLs into a folder or a zip, the way img2dataset users work.

    python manage.py download_urls URLS.txt --out DIR_OR.zip [--min-size WxH]
        [--formats jpeg,png] [--concurrency N] [--per-host N] [--count N]

URLS.txt holds one URL per line (blank lines and # comments are skipped; a second
tab- or comma-separated column is taken as the page URL). Every URL goes through the
same chokepoint, validation and de-duplication as a job.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from django.core.files.storage import FileSystemStorage
from django.core.management.base import BaseCommand, CommandError, CommandParser

from downloader.management.commands.fetch_images import CONVERT_CHOICES, parse_formats, parse_min_size


def read_url_file(path: Path):
    from downloader.collect import Candidate

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
        parser.add_argument("--min-size", default="", help="WIDTHxHEIGHT")
        parser.add_argument("--formats", default="", help="e.g. jpeg,png")
        parser.add_argument(
            "--convert-to", choices=CONVERT_CHOICES, default=None, help="re-encode every image to this format"
        )
        parser.add_argument(
            "--concurrency", type=int, default=0, help="downloads in flight (default: setting)"
        )
        parser.add_argument("--per-host", type=int, default=0, help="downloads in flight per host")
        parser.add_argument("--name", default="image", help="file name stem for the images")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options) -> None:
        from downloader.archive import entry_names, write_archive
        from downloader.collect import collect_images
        from downloader.http import Fetcher
        from downloader.validation import ImageRules

        source = Path(options["urls"])
        if not source.is_file():
            raise CommandError(f"{source} is not a file")
        total = sum(1 for _ in read_url_file(source))
        wanted = options["count"] or total
        if wanted < 1:
            raise CommandError(f"{source} lists no URLs")
        min_w, min_h = parse_min_size(options["min_size"]) if options["min_size"] else (0, 0)
        rules = ImageRules(
            formats=set(parse_formats(options["formats"])) if options["formats"] else set(),
            min_width=min_w,
            min_height=min_h,
            min_side=0 if options["min_size"] else None,  # --min-size replaces the junk floor
            output_format=options["convert_to"],
        )
        fetcher = Fetcher(concurrency=options["concurrency"] or None, per_host=options["per_host"] or None)
        out = Path(options["out"]).resolve()
        bar = None
        if not options["no_progress"]:
            from tqdm import tqdm

            bar = tqdm(total=wanted, unit="img", file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
        rejected_total = [0]

        def progress(kind: str, **info) -> None:
            if kind == "rejected":
                rejected_total[0] += 1
            if bar is not None:
                if kind == "kept":
                    bar.update(1)
                bar.set_postfix(rejected=rejected_total[0], refresh=False)

        work = Path(tempfile.mkdtemp(prefix="imagedl-urls-", dir=out.parent if out.parent.exists() else None))
        try:
            result = collect_images(
                read_url_file(source),
                wanted=wanted,
                workdir=work,
                rules=rules,
                progress=progress,
                fetcher=fetcher,
            )
            if bar is not None:
                bar.close()
            if out.suffix.lower() == ".zip":
                out.parent.mkdir(parents=True, exist_ok=True)
                archive = write_archive(
                    result.kept,
                    name_stem=options["name"],
                    storage=FileSystemStorage(location=str(out.parent)),
                    path=out.name,
                )
                size = archive.bytes
            else:
                out.mkdir(parents=True, exist_ok=True)
                size = 0
                for name, image in zip(
                    entry_names(options["name"], [k.format for k in result.kept]), result.kept, strict=True
                ):
                    shutil.move(image.path, out / name)
                    size += image.bytes
        finally:
            fetcher.close()
            shutil.rmtree(work, ignore_errors=True)
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(result.rejected.items())) or "none"
        self.stdout.write(
            f"asked {result.asked}, found {result.found}, kept {len(result.kept)}, "
            f"rejected {sum(result.rejected.values())} ({reasons}), unused {result.unused}; "
            f"wrote {out} ({size} bytes)"
        )
