import os

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedules(sender, using="default", **kwargs) -> None:
    if using != "default":
        return
    from jobs.tasks import ensure_purge_schedule

    ensure_purge_schedule()


def _reset_cassandra_in_child() -> None:
    from jobs.cassandra import reset_after_fork

    reset_after_fork()


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Image jobs"

    def ready(self) -> None:
        from jobs import checks  # noqa: F401  (registers the system checks)

        # After django_q's tables exist (its post_migrate runs for every app).
        post_migrate.connect(_ensure_schedules, dispatch_uid="imagedl-schedules")
        # django-q2 forks its workers after the parent has talked to Cassandra (checks).
        os.register_at_fork(after_in_child=_reset_cassandra_in_child)
        # Register the cqlengine connection now (lazily: nothing is contacted), so
        # model queries work in any thread of any process, and connect it before the
        # first request of a process runs (see ensure_session).
        from django.core.signals import request_started
        from django.db import connections

        from jobs.cassandra import ensure_session

        connections["cassandra"].connect()
        request_started.connect(ensure_session, dispatch_uid="imagedl-cassandra-session")
