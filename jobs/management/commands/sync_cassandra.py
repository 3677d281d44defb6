"""``manage.py sync_cassandra``: django-cassandra-engine's command (create the keyspace
if missing, sync the tables), and then the keyspace's replication brought to
CASSANDRA_REPLICATION when the keyspace exists with another one.

This app comes before django_cassandra_engine in INSTALLED_APPS, so this command is
the one Django runs.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connections
from django_cassandra_engine.management.commands.sync_cassandra import Command as EngineSyncCommand

from jobs.store.cassandra import ALIAS, align_replication


class Command(EngineSyncCommand):
    help = "Create or update the Cassandra keyspace (replication included) and its tables"

    def sync(self, alias: str) -> None:
        options = connections[alias].settings_dict.setdefault("OPTIONS", {})
        given = options.get("replication")
        # The engine's sync (and its test set-up) pops keys off the replication it is
        # given: it gets a copy, and CASSANDRA_REPLICATION stays the one source.
        options["replication"] = dict(given or {})
        try:
            super().sync(alias)
        finally:
            options["replication"] = given
        if alias != ALIAS:
            return
        done = align_replication(
            connections[alias].settings_dict["NAME"], dict(settings.CASSANDRA_REPLICATION)
        )
        if done:
            self.stdout.write(self.style.WARNING(done) if "repair" in done else done)
