"""Delete the archives, images and personal data of jobs past retention (and the
history and personal data of recurring series stopped that long ago).

    python manage.py purge_jobs [--dry-run] [--older-than 90m|2h|7d]

Also runs by itself every IMAGEDL_PURGE_EVERY_MINUTES (the jobs.tasks.purge_due schedule).
"""

from __future__ import annotations

import datetime as dt
import re

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.core.services import jobs_purge_due
from jobs.lib.formatting import human_bytes

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_age(text: str) -> dt.timedelta:
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not match:
        raise CommandError(f"--older-than {text!r}: use a number and a unit, e.g. 90m, 2h or 7d")
    return dt.timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


class Command(BaseCommand):
    help = "Purge finished jobs past their retention: archive, images and personal data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="report what would be purged")
        parser.add_argument(
            "--older-than", default="", help="finished longer ago than this (default: retention)"
        )

    def handle(self, *args, **options) -> None:
        older = parse_age(options["older_than"]) if options["older_than"] else None
        summary = jobs_purge_due(older_than=older, dry_run=options["dry_run"])
        verb = "would purge" if options["dry_run"] else "purged"
        self.stdout.write(
            f"{verb} {summary.jobs} job(s), {summary.archives} archive(s), {human_bytes(summary.bytes)}, "
            f"{summary.series} stopped series"
        )
        if options["verbosity"] > 1:
            for job_id in summary.job_ids:
                self.stdout.write(f"  {job_id}")
