"""gunicorn's hooks for imagedl (``--config python:imagedl_site.gunicorn_conf``: the
Procfile, ``make run``, the local cluster).

Prometheus in multiprocess mode: the master empties the counters' folder before it
forks its workers (``imagedl_site.prometheus_dir``), and tells ``prometheus_client``
when a worker exits, so that worker's live gauges stop counting.
"""

from __future__ import annotations


def on_starting(server) -> None:
    from imagedl_site.prometheus_dir import multiproc_dir_prepare

    multiproc_dir_prepare("web")


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
