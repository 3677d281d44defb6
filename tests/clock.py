"""Time travel for tests of what happens over minutes or hours: a clock that
``django.utils.timezone.now`` reads, and django-q2's queue run by hand at that time.

    clock = SimulatedClock(monkeypatch)          # starts at the real now
    clock.advance(minutes=1)
    run_due_tasks(clock, {"jobs.tasks.email_send": outbox.email_send})

Every module that asks ``timezone.now()`` sees the clock; nothing sleeps.
"""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Callable

from django.utils import timezone
from django_q.models import OrmQ, Schedule


class SimulatedClock:
    def __init__(self, monkeypatch, start: dt.datetime | None = None) -> None:
        self.now = start or dt.datetime.now(dt.UTC)
        monkeypatch.setattr(timezone, "now", lambda: self.now)

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def run_due_tasks(clock: SimulatedClock, handlers: dict[str, Callable[..., object]]) -> list[object]:
    """Run the queued tasks and the one-off schedules due by the clock whose function
    has a handler (as a worker would), removing them; other tasks are dropped."""
    calls: list[tuple[str, tuple]] = []
    for queued in OrmQ.objects.all():
        task = queued.task
        calls.append((task["func"], tuple(task["args"])))
        queued.delete()
    for schedule in Schedule.objects.filter(schedule_type=Schedule.ONCE, next_run__lte=clock.now):
        args = ast.literal_eval(schedule.args) if schedule.args else ()
        calls.append((schedule.func, args if isinstance(args, tuple) else (args,)))
        schedule.delete()
    return [handlers[func](*args) for func, args in calls if func in handlers]
