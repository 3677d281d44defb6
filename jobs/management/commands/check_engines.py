"""Load each search engine with a fixed query and check its locators still find
full-size results: an early warning when a site changes its markup.

    python manage.py check_engines [--engine bing] [--query "red fox"] [--min-results 10]

Exits non-zero when an engine fails. Base URLs come from IMAGEDL_*_URL settings. Each
engine's result is kept for the metrics (``imagedl_engine_canary_ok``, jobs.ops.canary).
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Check that every search engine still yields full-size image URLs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--engine", action="append", help="check only this engine (repeatable)")
        parser.add_argument("--query", default="red fox")
        parser.add_argument("--min-results", type=int, default=10)

    def handle(self, *args, **options) -> None:
        from downloader.browser import open_browser
        from downloader.config import browser_options_from_settings, engine_options_from_settings
        from downloader.engines import ENGINES, get_engine
        from downloader.engines.base import EngineError, SearchRules
        from jobs.ops.canary import canary_store

        names = options["engine"] or list(ENGINES)
        unknown = set(names) - set(ENGINES)
        if unknown:
            raise CommandError(f"unknown engine(s): {', '.join(sorted(unknown))}")
        wanted = options["min_results"]
        failures = []
        engines = engine_options_from_settings()
        with open_browser(browser_options_from_settings(), images=False) as driver:  # as searches run
            for name in names:
                engine = get_engine(name, engines)
                started = time.monotonic()
                try:
                    found = list(engine.search(driver, options["query"], wanted=wanted, rules=SearchRules()))
                    problem = (
                        None
                        if len(found) >= wanted
                        else f"only {len(found)} full-size results (want {wanted})"
                    )
                except EngineError as exc:
                    found, problem = [], f"{exc.reason}: {exc}"
                except Exception as exc:  # a broken page must be reported, not crash the check
                    found, problem = [], f"{type(exc).__name__}: {exc}"
                took = time.monotonic() - started
                if problem:
                    failures.append(name)
                    self.stdout.write(f"FAIL {name:<11} {problem} ({took:.1f}s, {engine.base_url()})")
                else:
                    self.stdout.write(f"ok   {name:<11} {len(found)} full-size results in {took:.1f}s")
        canary_store({name: name not in failures for name in names})
        if failures:
            raise CommandError(f"engine check failed for: {', '.join(failures)}")
