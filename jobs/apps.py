import os

from django.apps import AppConfig
from django.db.models.signals import post_migrate

PURGE_SCHEDULE_NAME = "imagedl-purge-due"
REAPER_SCHEDULE_NAME = "imagedl-reaper"


def _ensure_schedules(sender, using="default", **kwargs) -> None:
    if using != "default":
        return
    from django.conf import settings

    from jobs.lib import scheduling

    scheduling.ensure_recurring(
        PURGE_SCHEDULE_NAME, scheduling.PURGE_TASK, settings.IMAGEDL_PURGE_EVERY_MINUTES
    )
    scheduling.ensure_recurring(
        REAPER_SCHEDULE_NAME, scheduling.REAP_TASK, settings.IMAGEDL_REAPER_EVERY_MINUTES
    )
    scheduling.rename_stored_tasks()


def _reset_cassandra_in_child() -> None:
    from jobs.store.cassandra import reset_after_fork

    reset_after_fork()


def _register_series_steps() -> None:
    """Core runs these at the end of every run and in every purge pass, without
    importing the series package (which sits above it)."""
    from jobs.core import hooks
    from jobs.series.services import series_purge_due, series_run_ended

    hooks.end_step_register("series", series_run_ended)
    hooks.purge_step_register("series", series_purge_due)


def _register_webhooks() -> None:
    """Core and the store record a job's events; the webhooks hear of each one."""
    from jobs.core.webhooks import webhook_on_event
    from jobs.store.events import event_observer_register

    event_observer_register("webhooks", webhook_on_event)


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Image jobs"

    def ready(self) -> None:
        from django.test.signals import setting_changed

        from jobs import checks  # noqa: F401  (registers the system checks)
        from jobs.lib.ratelimit import load_rates, reload_rates

        load_rates()  # a bad limit stops start-up here, naming the setting
        _register_series_steps()
        _register_webhooks()
        setting_changed.connect(reload_rates, dispatch_uid="imagedl-rates")
        from jobs.web.shared_render import shared_html_forget

        setting_changed.connect(shared_html_forget, dispatch_uid="imagedl-shared-html")

        # After django_q's tables exist (its post_migrate runs for every app).
        post_migrate.connect(_ensure_schedules, dispatch_uid="imagedl-schedules")
        # django-q2 forks its workers after the parent has talked to Cassandra (checks).
        os.register_at_fork(after_in_child=_reset_cassandra_in_child)
        # Register the cqlengine connection now (lazily: nothing is contacted), so
        # model queries work in any thread of any process, and connect it before the
        # first request of a process runs (see ensure_session).
        from django.core.signals import request_started
        from django.db import connections

        from jobs.store.cassandra import ensure_session

        connections["cassandra"].connect()
        request_started.connect(ensure_session, dispatch_uid="imagedl-cassandra-session")
