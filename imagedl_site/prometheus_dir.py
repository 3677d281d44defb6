"""Where the processes of one server keep their Prometheus counters.

gunicorn and django-q2 run several processes each; ``prometheus_client`` adds their
counts up from files in ``PROMETHEUS_MULTIPROC_DIR``, which must be set before it is
first imported and must start empty (files of an earlier start would be counted
again). ``multiproc_dir_prepare`` does both, for the gunicorn master
(``imagedl_site.gunicorn_conf``) and for ``manage.py qcluster`` (``manage.py``), before
they fork. Set by the operator, the folder is emptied; unset, each server gets its own
under ``IMAGEDL_VAR_DIR/prometheus/`` (``web-<pid>``, ``worker-<pid>``), removed when it
exits, and folders of servers no longer running are swept.
"""

from __future__ import annotations

import atexit
import os
import shutil
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def _var_dir() -> Path:
    return Path(os.environ.get("IMAGEDL_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep(parent: Path) -> None:
    """Remove the folders of servers that are gone (killed before they could)."""
    for folder in parent.glob("*-*"):
        pid = folder.name.rsplit("-", 1)[1]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def multiproc_dir_prepare(kind: str) -> Path:
    """An empty folder for this server's counters, named in ``PROMETHEUS_MULTIPROC_DIR``."""
    given = os.environ.get(ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for entry in folder.glob("*.db"):
            entry.unlink(missing_ok=True)
        return folder
    parent = _var_dir() / "prometheus"
    parent.mkdir(parents=True, exist_ok=True)
    _sweep(parent)
    owner = os.getpid()
    folder = parent / f"{kind}-{owner}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    os.environ[ENV] = str(folder)
    atexit.register(multiproc_dir_remove, folder, owner)
    return folder


def multiproc_dir_remove(folder: Path, owner: int) -> None:
    """The server's own folder goes when it exits (not a forked child's exit)."""
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)
