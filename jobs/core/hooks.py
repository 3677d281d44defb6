"""Steps that layers above core hang on a job's life, registered in ``JobsConfig.ready()``.

Core calls them without importing who registered them: the end of a run (a recurring
series makes its next run) and the purge (stopped series past their retention).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Protocol

from jobs.models import Job

logger = logging.getLogger("imagedl.jobs")

EndStep = Callable[[Job], None]


class PurgeStep(Protocol):
    def __call__(self, cutoff: dt.datetime, *, dry_run: bool) -> int: ...


_end_steps: dict[str, EndStep] = {}
_purge_steps: dict[str, PurgeStep] = {}


def end_step_register(name: str, step: EndStep) -> None:
    """Run ``step(job)`` when a run has ended (delivered, failed or cancelled).

    A step runs at least once and may run again (a retried task, the reaper), so it must
    be idempotent. Registering a name again replaces its step."""
    _end_steps[name] = step


def purge_step_register(name: str, step: PurgeStep) -> None:
    """Run ``step(cutoff, dry_run=...)`` in every purge pass; it returns how many it purged."""
    _purge_steps[name] = step


def end_steps_run(job: Job) -> bool:
    """Every end step for ``job``; False when one failed (logged: the job stays in
    ``job_active`` and the reaper runs the steps again)."""
    for name, step in _end_steps.items():
        try:
            step(job)
        except Exception as exc:
            logger.warning(
                "job=%s: the %s step failed (%s); the reaper repeats it", job.id, name, type(exc).__name__
            )
            return False
    return True


def purge_steps_run(cutoff: dt.datetime, *, dry_run: bool) -> dict[str, int]:
    """Every purge step; how many each one purged, by name."""
    return {name: step(cutoff, dry_run=dry_run) for name, step in _purge_steps.items()}
