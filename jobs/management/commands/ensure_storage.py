"""``manage.py ensure_storage``: create the S3 bucket of archives and previews when
IMAGEDL_S3_BUCKET is set and the bucket does not exist yet (idempotent; with local
disk it does nothing). Part of ``make setup`` and of a first start on several machines.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from jobs.core import storage


class Command(BaseCommand):
    help = "Create the S3 bucket for archives and previews if it is missing (IMAGEDL_S3_BUCKET)"

    def handle(self, *args: object, **options: object) -> None:
        say = self.stdout.write if options["verbosity"] else (lambda _text: None)
        if not storage.uses_s3():
            say("outputs on local disk (IMAGEDL_S3_BUCKET is not set): nothing to do")
            return
        where = settings.AWS_S3_ENDPOINT_URL or "Amazon S3"
        try:
            created = storage.ensure_bucket()
        except Exception as exc:
            raise CommandError(f"bucket {settings.IMAGEDL_S3_BUCKET} at {where}: {exc}") from exc
        state = "created" if created else "exists"
        say(f"bucket {settings.IMAGEDL_S3_BUCKET} at {where}: {state}")
