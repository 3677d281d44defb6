"""Queueing work in django-q2: now, or once at a given time.

Task arguments are plain strings and numbers (never personal data); a one-off
Schedule's ``args`` go through ``ast.literal_eval``, so they are written with repr.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

RUN_TASK = "jobs.tasks.job_run"
EMAIL_TASK = "jobs.tasks.email_send"
PURGE_TASK = "jobs.tasks.purge_due"
REAP_TASK = "jobs.tasks.reap"
# Task paths of earlier versions, rewritten by ``migrate`` in stored schedules.
RENAMED_TASKS = {"downloader.tasks.job_run": RUN_TASK}


def schedule_once(name: str, func: str, args: tuple[str | int, ...], run_at: dt.datetime) -> None:
    """Run ``func(*args)`` once at ``run_at``; the name is how it is found again."""
    from django_q.models import Schedule

    Schedule.objects.create(
        name=name,
        func=func,
        # django-q2 reads a lone value as the only argument, and a tuple as several.
        args=repr(args[0] if len(args) == 1 else tuple(args)),
        schedule_type=Schedule.ONCE,
        repeats=-1,
        next_run=run_at,
    )


def queue_at(
    name: str, func: str, args: tuple[str | int, ...], run_at: dt.datetime | None = None, *, group: str
) -> None:
    """Queue now when ``run_at`` has come (or is None), else once at ``run_at``."""
    from django_q.tasks import async_task

    if run_at is None or run_at <= timezone.now() + dt.timedelta(seconds=1):
        async_task(func, *args, task_name=name, group=group)
        return
    schedule_once(name, func, args, run_at)


def unschedule(name: str) -> None:
    from django_q.models import Schedule

    Schedule.objects.filter(name=name).delete()


def ensure_recurring(name: str, func: str, every_minutes: int) -> None:
    """Create (or update) a task that runs every ``every_minutes``."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=name,
        defaults={
            "func": func,
            "schedule_type": Schedule.MINUTES,
            "minutes": every_minutes,
            "repeats": -1,
        },
    )


def rename_stored_tasks() -> None:
    """Point schedules stored by an earlier version at today's task paths."""
    from django_q.models import Schedule

    for old, new in RENAMED_TASKS.items():
        Schedule.objects.filter(func=old).update(func=new)
