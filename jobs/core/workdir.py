"""Each job's working folders: one per run, where downloads land before they are
validated and packed.

A run's folder survives a killed worker, so the next run on the same machine adopts
the images it had already validated (renaming the folder to its own) instead of
fetching them again. Runs never share a folder.

A folder nobody comes back for (its job finished, or was retried on another machine
after this one's run was killed) is removed by ``workdirs_sweep``, which every worker
runs now and then over its own folders.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from pathlib import Path

from django.conf import settings

from jobs.models import JobStatus
from jobs.store import records

SWEPT_MARK = ".swept"  # its time says when this machine last swept


def job_workdir(job_id: uuid.UUID, *, create: bool = True) -> Path:
    """The job's folder, holding one folder per run."""
    path = _work_root() / job_id.hex
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


def workdir_remove(job_id: uuid.UUID, *, run_id: uuid.UUID | None = None) -> None:
    """Remove the job's folder, or with ``run_id`` only that run's (and the job's
    folder with it when no other run has one there)."""
    folder = job_workdir(job_id, create=False)
    shutil.rmtree(folder / run_id.hex if run_id is not None else folder, ignore_errors=True)
    if run_id is not None:
        with contextlib.suppress(OSError):  # another run's folder is in it, or it is gone
            folder.rmdir()


def _work_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "work"


def workdirs_sweep(*, now: float | None = None) -> int:
    """Remove this machine's job folders that belong to no scheduled or running job
    and were last touched longer than the retention ago; returns how many."""
    root = _work_root()
    if not root.is_dir():
        return 0
    cutoff = (now or time.time()) - settings.IMAGEDL_RETENTION_MINUTES * 60
    removed = 0
    for folder in root.iterdir():
        if folder.is_dir() and _last_touched(folder) < cutoff and not _job_active(folder.name):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def workdirs_sweep_now_and_then(every_seconds: float) -> int:
    """``workdirs_sweep`` unless this machine swept less than ``every_seconds`` ago
    (called at the start of each run: every worker sweeps its own disk)."""
    mark = _work_root() / SWEPT_MARK
    try:
        if time.time() - mark.stat().st_mtime < every_seconds:
            return 0
    except FileNotFoundError:
        pass
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.touch()
    return workdirs_sweep()


def _last_touched(folder: Path) -> float:
    """The newest time of the job folder and its run folders (a run writes in its own)."""
    try:
        return max([folder.stat().st_mtime, *(child.stat().st_mtime for child in folder.iterdir())])
    except FileNotFoundError:  # removed meanwhile (a run that finished)
        return float("inf")


def _job_active(name: str) -> bool:
    """Whether the folder named ``name`` belongs to a scheduled or running job (a name
    that is no job id is not ours to remove)."""
    try:
        job_id = uuid.UUID(hex=name)
    except ValueError:
        return True
    job = records.job_get(job_id)
    return job is not None and job.status in JobStatus.ACTIVE
