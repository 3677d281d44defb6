"""Search and download images in the foreground, without the web app or a job record.

    python manage.py fetch_images "red fox" --count 100 --out fox.zip \
        [--engine bing|all] [--safe-search strict|moderate|off]
        [--license cc|public] [--colour color|bw|red|...] [--layout square|wide|tall]
        [--size large|wallpaper] [--type photo|clipart|line|animated] [--freshness day|week|month]
        [--formats jpeg,png] [--min-size 800x600] [--convert-to jpeg]
        [--pack zip|imagefolder|parquet|webdataset] [--shard-mb 256]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.core.files.storage import FileSystemStorage
from django.core.management.base import BaseCommand, CommandError, CommandParser

from downloader.choices import (
    AUTO,
    ENGINE_OPTIONS,
    FILTER_KINDS,
    FILTER_VALUES,
    MAX_COUNT,
    MIN_COUNT,
    SAFE_SEARCH,
    SAFE_SEARCH_DEFAULT,
    parse_filters,
)
from downloader.management.commands._options import (
    ProgressBar,
    add_filter_arguments,
    add_pack_arguments,
    image_rules,
    pack_options,
    summary,
)


class Command(BaseCommand):
    help = "Search an image engine and download valid, unique, full-size images into a zip."
    # Needs neither Cassandra nor mail (the web app's checks would print warnings that
    # do not apply); a missing browser is reported when the search starts.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("query", help="what to search for (or a page URL with --page)")
        parser.add_argument("--count", type=int, default=50, help=f"images wanted ({MIN_COUNT}-{MAX_COUNT})")
        parser.add_argument("--out", required=True, help="the zip file to write")
        parser.add_argument(
            "--engine",
            choices=ENGINE_OPTIONS,
            default=AUTO,
            help="one engine (falling back to the others), auto, or all: every engine in turn",
        )
        parser.add_argument(
            "--safe-search",
            choices=SAFE_SEARCH,
            default=SAFE_SEARCH_DEFAULT,
            help=f"the engines' adult filter (default {SAFE_SEARCH_DEFAULT})",
        )
        for kind in FILTER_KINDS:  # the engine filters: --license, --colour, ...
            names = [f"--{kind}", "--color"] if kind == "colour" else [f"--{kind}"]
            parser.add_argument(
                *names,
                dest=f"filter_{kind}",
                default="",
                metavar=kind.upper(),
                help=f"engine filter: {', '.join(FILTER_VALUES[kind])} (default any)",
            )
        parser.add_argument("--page", action="store_true", help="QUERY is a page URL to extract images from")
        add_filter_arguments(parser)
        add_pack_arguments(parser)

    def handle(self, *args, **options) -> None:
        from downloader.archive import write_archive

        request = self._request(options)
        pack = pack_options(options)
        out = Path(options["out"]).resolve()
        if out.suffix.lower() != ".zip":
            raise CommandError("--out must name a .zip file")
        out.parent.mkdir(parents=True, exist_ok=True)
        bar = ProgressBar(request.wanted, not options["no_progress"], self.stderr.write)
        with tempfile.TemporaryDirectory(prefix="imagedl-") as work:
            result = self._gather(request, Path(work), bar)
            archive = write_archive(
                result.kept[: request.wanted],
                name_stem=request.name_stem,
                storage=FileSystemStorage(location=str(out.parent)),
                path=out.name,
                safe_search="" if request.page_url else request.safe_search,
                filters="" if request.page_url else request.filters.as_text(),
                pack=pack,
                subject=request.subject,
                from_page=bool(request.page_url),
            )
        self.stdout.write(summary(result, archive.count, out, archive.bytes))

    def _gather(self, request, work: Path, bar: ProgressBar):
        """The request's images; CommandError when no browser starts or none is kept."""
        from downloader.browser import BrowserUnavailable
        from downloader.config import gather_options_from_settings
        from downloader.gather import gather

        try:
            result = gather(
                request,
                work,
                on_event=lambda kind, message, data: bar.message(message),
                on_progress=bar.update,
                options=gather_options_from_settings(),
            )
        except BrowserUnavailable as exc:
            raise CommandError(str(exc)) from None
        bar.close()
        if not result.kept:
            raise CommandError(
                f"no valid images found ({result.found} candidates, rejected: {dict(result.rejected)})"
            )
        return result

    def _request(self, options: dict):
        from downloader.gather import Request

        count = options["count"]
        if not MIN_COUNT <= count <= MAX_COUNT:
            raise CommandError(f"--count must be between {MIN_COUNT} and {MAX_COUNT}")
        query = options["query"].strip()
        if not query:
            raise CommandError("the query is empty")
        rules = image_rules(options)
        try:
            filters = parse_filters({kind: options[f"filter_{kind}"] for kind in FILTER_KINDS})
        except ValueError as exc:
            raise CommandError(f"--{exc}") from None
        if filters and options["page"]:
            raise CommandError("engine filters apply to searches, not to --page")
        return Request(
            wanted=count,
            query="" if options["page"] else query,
            page_url=query if options["page"] else "",
            engine=options["engine"],
            formats=frozenset(rules.formats),
            min_width=rules.min_width,
            min_height=rules.min_height,
            min_side=rules.min_side,
            output_format=rules.output_format,
            safe_search=options["safe_search"],
            filters=filters,
        )
