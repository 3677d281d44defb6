"""Each job's working folder: downloads land here before they are validated and packed.

It survives a killed worker, so a re-delivered run finds the images it already
validated and does not fetch them again.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from django.conf import settings


def job_workdir(job_id: uuid.UUID, *, create: bool = True) -> Path:
    path = Path(settings.MEDIA_ROOT) / "work" / job_id.hex
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def remove_workdir(job_id: uuid.UUID) -> None:
    shutil.rmtree(job_workdir(job_id, create=False), ignore_errors=True)
