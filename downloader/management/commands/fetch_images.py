"""Search and download images in the foreground, without the web app or a job record.

    python manage.py fetch_images "red fox" --count 100 --out fox.zip \
        [--engine bing] [--formats jpeg,png] [--min-size 800x600] [--convert-to jpeg]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from django.core.files.storage import FileSystemStorage
from django.core.management.base import BaseCommand, CommandError, CommandParser

ENGINES = ("auto", "bing", "duckduckgo", "google")
FORMATS = {"jpeg", "png", "webp", "gif"}
CONVERT_CHOICES = sorted(FORMATS)


def parse_min_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise CommandError(f"--min-size {text!r}: expected WIDTHxHEIGHT, e.g. 800x600")
    return int(width), int(height)


def parse_formats(text: str) -> frozenset[str]:
    chosen = {f.strip().lower().replace("jpg", "jpeg") for f in text.split(",") if f.strip()}
    unknown = chosen - FORMATS
    if unknown:
        raise CommandError(
            f"--formats: unknown {', '.join(sorted(unknown))}; choose from {', '.join(sorted(FORMATS))}"
        )
    return frozenset(chosen)


class Command(BaseCommand):
    help = "Search an image engine and download valid, unique, full-size images into a zip."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("query", help="what to search for (or a page URL with --page)")
        parser.add_argument("--count", type=int, default=50, help="images wanted (1-500)")
        parser.add_argument("--out", required=True, help="the zip file to write")
        parser.add_argument("--engine", choices=ENGINES, default="auto")
        parser.add_argument("--page", action="store_true", help="QUERY is a page URL to extract images from")
        parser.add_argument("--formats", default="", help="e.g. jpeg,png (default: any)")
        parser.add_argument("--min-size", default="", help="WIDTHxHEIGHT, e.g. 800x600")
        parser.add_argument(
            "--convert-to", choices=CONVERT_CHOICES, default=None, help="re-encode every image to this format"
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options) -> None:
        from downloader.pipeline import Request, gather

        count = options["count"]
        if not 1 <= count <= 500:
            raise CommandError("--count must be between 1 and 500")
        min_w, min_h = parse_min_size(options["min_size"]) if options["min_size"] else (0, 0)
        query = options["query"].strip()
        if not query:
            raise CommandError("the query is empty")
        request = Request(
            wanted=count,
            query="" if options["page"] else query,
            page_url=query if options["page"] else "",
            engine=options["engine"],
            formats=parse_formats(options["formats"]) if options["formats"] else frozenset(),
            min_width=min_w,
            min_height=min_h,
            min_side=0 if options["min_size"] else None,  # --min-size replaces the junk floor
            output_format=options["convert_to"],
        )
        out = Path(options["out"]).resolve()
        if out.suffix.lower() != ".zip":
            raise CommandError("--out must name a .zip file")
        out.parent.mkdir(parents=True, exist_ok=True)
        bar = None
        if not options["no_progress"]:
            from tqdm import tqdm

            bar = tqdm(total=count, unit="img", file=sys.stderr, dynamic_ncols=True)

        def on_event(kind: str, message: str, data: dict) -> None:
            if bar is not None:
                bar.write(message)
            else:
                self.stderr.write(message)

        def on_progress(counters) -> None:
            if bar is not None:
                bar.n = min(counters.kept, count)
                bar.set_postfix(found=counters.found, rejected=sum(counters.rejected.values()), refresh=False)
                bar.refresh()

        from downloader.archive import write_archive

        with tempfile.TemporaryDirectory(prefix="imagedl-") as work:
            result = gather(request, Path(work), on_event=on_event, on_progress=on_progress)
            if bar is not None:
                bar.close()
            if not result.kept:
                raise CommandError(
                    f"no valid images found ({result.found} candidates, rejected: {dict(result.rejected)})"
                )
            archive = write_archive(
                result.kept[:count],
                name_stem=request.name_stem,
                storage=FileSystemStorage(location=str(out.parent)),
                path=out.name,
            )
        rejected = sum(result.rejected.values())
        self.stdout.write(
            f"asked {count}, found {result.found}, rejected {rejected}, unused {result.unused}, "
            f"kept {archive.count}; "
            f"wrote {out} ({archive.bytes} bytes)"
        )
