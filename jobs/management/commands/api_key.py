"""``manage.py api_key create --email X`` and ``manage.py api_key revoke PREFIX``.

``create`` prints the read-only key, the webhook secret and, on the last line, the
read-write key (one per line, nothing else: scripts take the last line).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from jobs.store.api_keys import PREFIX_LENGTH, api_key_create, api_key_revoke


class Command(BaseCommand):
    help = "Issue API keys for a mailbox, or revoke a key by its prefix."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser(
            "create", help="issue a read-write key, a read-only key and a webhook secret"
        )
        create.add_argument("--email", required=True, help="the mailbox the keys act for")
        revoke = actions.add_parser("revoke", help="revoke a key (and the one issued with it)")
        revoke.add_argument("prefix", help="the key's prefix, e.g. imw_AbCd1234, or the whole key")

    def handle(self, *args: object, **options: object) -> None:
        if options["action"] == "create":
            self._create(str(options["email"]))
        else:
            self._revoke(str(options["prefix"]))

    def _create(self, email: str) -> None:
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"not an email address: {email!r}") from None
        keys = api_key_create(email=email)
        self.stdout.write(keys.read_only)
        self.stdout.write(keys.webhook_secret)
        self.stdout.write(keys.read_write)

    def _revoke(self, prefix: str) -> None:
        if not api_key_revoke(prefix[:PREFIX_LENGTH]):
            raise CommandError(f"no key with the prefix {prefix[:PREFIX_LENGTH]!r}")
        self.stderr.write(f"revoked {prefix[:PREFIX_LENGTH]} and the key issued with it")
