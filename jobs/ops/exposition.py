"""The Prometheus text of one server (a gunicorn master's workers, or a django-q2
cluster's processes), and who may read it.

Counters and histograms come from ``jobs.lib.metrics``, added up over the server's
processes when ``PROMETHEUS_MULTIPROC_DIR`` is set (``imagedl_site.prometheus_dir``).
The gauges are read at scrape time from what operators share: the jobs in hand
(``jobs.core.overview``, at most one read of the tables every 15 s for every process
sharing the cache), the queue clusters that reported in, and the engines' canary.
"""

from __future__ import annotations

import hmac
import logging
import os

from django.conf import settings
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from downloader.addresses import is_loopback
from jobs.core.overview import STATES, jobs_overview_cached
from jobs.lib.metrics import metrics_prime
from jobs.ops.canary import canary_read

logger = logging.getLogger("imagedl.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_access_allowed(remote_addr: str, authorization: str, *, loopback_counts: bool = True) -> bool:
    """A caller on loopback (while ``loopback_counts``), or one sending
    ``Bearer <IMAGEDL_METRICS_TOKEN>`` (compared in constant time)."""
    token = settings.IMAGEDL_METRICS_TOKEN
    scheme, _, given = authorization.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    return loopback_counts and is_loopback(remote_addr)


class SharedStateCollector(Collector):
    """Gauges read from the tables and the cache, when scraped."""

    def collect(self):
        yield from _jobs_gauges()
        yield from _cluster_gauges()
        yield from _canary_gauges()


def _jobs_gauges():
    try:
        overview = jobs_overview_cached()
    except Exception as exc:  # Cassandra down: the counters still go out
        logger.warning("metrics: the jobs overview failed (%s)", type(exc).__name__)
        return
    jobs = GaugeMetricFamily(
        "imagedl_jobs", "Jobs due by now, by state (jobs scheduled for later are not read).", labels=["state"]
    )
    for state in STATES:
        jobs.add_metric([state], overview.counts.get(state, 0))
    yield jobs
    yield GaugeMetricFamily(
        "imagedl_jobs_overdue",
        "Jobs past their time by more than the reaper's grace, or running with an expired lease.",
        value=len(overview.overdue),
    )
    yield GaugeMetricFamily(
        "imagedl_queue_oldest_seconds",
        "How long the oldest scheduled job has waited past its run time (0: none).",
        value=overview.oldest_waiting_seconds,
    )


def _cluster_gauges():
    from django_q.status import Stat

    try:
        clusters = [stat for stat in Stat.get_all() if stat.status != "Stopped"]
    except Exception as exc:
        logger.warning("metrics: the queue clusters could not be read (%s)", type(exc).__name__)
        return
    yield GaugeMetricFamily(
        "imagedl_worker_clusters", "django-q2 worker clusters that reported in lately.", value=len(clusters)
    )


def _canary_gauges():
    results = canary_read()
    ok = GaugeMetricFamily(
        "imagedl_engine_canary_ok", "1 when check_engines last found the engine working.", labels=["engine"]
    )
    at = GaugeMetricFamily(
        "imagedl_engine_canary_timestamp_seconds",
        "When check_engines last checked the engine.",
        labels=["engine"],
    )
    for engine, result in sorted(results.items()):
        ok.add_metric([engine], 1 if result.get("ok") else 0)
        at.add_metric([engine], float(result.get("at", 0)))
    yield ok
    yield at


def metrics_text() -> bytes:
    """This server's metrics in the Prometheus text format."""
    metrics_prime()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:  # one process (tests, runserver): its own counters
        registry = CollectorRegistry()
        registry.register(_ProcessMetrics())
    registry.register(SharedStateCollector())
    return generate_latest(registry)


class _ProcessMetrics(Collector):
    """The default registry's metrics (this process's counters) inside another registry."""

    def collect(self):
        yield from REGISTRY.collect()
