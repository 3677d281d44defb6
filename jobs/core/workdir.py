"""Each job's working folders: one per run, where downloads land before they are
validated and packed.

A run's folder survives a killed worker, so the next run on the same machine adopts
the images it had already validated (renaming the folder to its own) instead of
fetching them again. Runs never share a folder.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from django.conf import settings


def job_workdir(job_id: uuid.UUID, *, create: bool = True) -> Path:
    """The job's folder, holding one folder per run."""
    path = Path(settings.MEDIA_ROOT) / "work" / job_id.hex
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def run_workdir(job_id: uuid.UUID, run_id: uuid.UUID, *, adopt: uuid.UUID | None = None) -> Path:
    """The run's own folder. With ``adopt``, an earlier run's folder on this machine
    becomes this run's (one rename: a run that lost its lease finds its folder gone)."""
    path = job_workdir(job_id) / run_id.hex
    if adopt is not None and not path.exists():
        earlier = job_workdir(job_id) / adopt.hex
        try:
            earlier.rename(path)
        except OSError:
            pass  # not on this machine, or taken already: start empty
    path.mkdir(parents=True, exist_ok=True)
    return path


def workdir_remove(job_id: uuid.UUID) -> None:
    shutil.rmtree(job_workdir(job_id, create=False), ignore_errors=True)
