"""``manage.py qcluster``: django-q2's worker cluster, plus its ``/metrics`` listener
(``jobs.ops.listener``) in the main process once the cluster has forked.

``jobs`` comes before ``django_q`` in INSTALLED_APPS, so this command is the one
``manage.py qcluster`` runs; it keeps django-q2's options. ``manage.py`` has set the
counters' folder (``PROMETHEUS_MULTIPROC_DIR``) before anything was imported.
"""

from __future__ import annotations

import os

from django.conf import settings
from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as QclusterCommand

from jobs.ops.listener import metrics_listener_start


class Command(QclusterCommand):
    def handle(self, *args, **options) -> None:
        if options.get("run_once"):
            return super().handle(*args, **options)
        settings.SECRET_KEY  # noqa: B018 (as django-q2's command: no cluster without a key)
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        cluster = Cluster()
        cluster.start()
        # Started after the fork, so no process of the cluster inherits its socket.
        listener = metrics_listener_start(
            settings.IMAGEDL_WORKER_METRICS_HOST, settings.IMAGEDL_WORKER_METRICS_PORT
        )
        try:
            cluster.sentinel.join()  # until a signal stops the cluster
        finally:
            if listener is not None:
                listener.shutdown()
