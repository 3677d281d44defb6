"""A real Prometheus, run with ops/prometheus/prometheus.yml, scrapes a real worker's
/metrics listener: after one job, its HTTP API says imagedl_images_kept_total rose by
the job's count, the alert rules are loaded and the dashboard's queries are accepted.
Its graph of imagedl_jobs_finished_total, in headless Chromium, is the picture in
docs/operations.md (``make screenshots``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import requests
from django.conf import settings

from jobs.models import JobStatus
from jobs.store import records
from tests.factories import make_job
from tests.mailserver import free_port
from tests.paths import REPO, screenshot_dir
from tests.prometheus_server import PrometheusServer
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.screenshots,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.imitation(total=40),
]
KEPT = "imagedl_images_kept_total"


@pytest.fixture
def prometheus_for():
    started: list[PrometheusServer] = []

    def start(**targets: list[str]) -> PrometheusServer:
        server = PrometheusServer(Path(settings.TEST_DIR) / f"prometheus-{free_port()}", **targets).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_prometheus_reads_the_kept_images_of_a_job_from_the_worker(start_worker, imitation, prometheus_for):
    port = free_port()
    start_worker(imitation, IMAGEDL_WORKER_METRICS_PORT=str(port))
    prometheus = prometheus_for(workers=[f"127.0.0.1:{port}"])
    target = f'{{job="imagedl-worker", instance="127.0.0.1:{port}"}}'
    assert wait_for(lambda: prometheus.value(f"up{target}") == 1, timeout=60), prometheus.log()[-2000:]
    assert wait_for(lambda: prometheus.value(f"{KEPT}{target}") is not None, timeout=60)
    before = prometheus.value(f"{KEPT}{target}")

    job = make_job(requested_count=6, run_in=-dt.timedelta(seconds=1))
    assert wait_for(lambda: records.job_get(job.id).status == JobStatus.DONE, timeout=180)
    # The next scrape (every 15 s) brings the count.
    assert wait_for(lambda: prometheus.value(f"{KEPT}{target}") == before + 6, timeout=60), prometheus.value(
        f"{KEPT}{target}"
    )
    rules = prometheus.query("count(ALERTS) or vector(0)")
    assert rules  # the rule evaluator answers
    loaded = requests.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert [len(group["rules"]) for group in loaded if group["name"] == "imagedl"] == [6]

    # Every query of the Grafana dashboard is one this Prometheus accepts.
    dashboard = json.loads((REPO / "ops" / "grafana" / "imagedl.json").read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(queries) > 20
    for query in queries:
        prometheus.query(query.replace("$__rate_interval", "1m"))  # raises on a 400

    _graph_screenshot(prometheus, "imagedl_jobs_finished_total", "prometheus-jobs-finished.png")


def _graph_screenshot(prometheus: PrometheusServer, expression: str, name: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    from downloader.browser import open_browser
    from downloader.config import browser_options_from_settings

    shots = screenshot_dir()
    shots.mkdir(parents=True, exist_ok=True)
    url = f"{prometheus.url}/graph?g0.expr={expression}&g0.tab=0&g0.range_input=2m"
    with open_browser(browser_options_from_settings(), width=1280, height=1150) as driver:
        driver.get(url)
        # The chart is drawn once its legend names the series.
        WebDriverWait(driver, 30).until(
            lambda d: f"{expression}{{" in d.find_element("tag name", "body").text
        )
        driver.set_window_size(1280, 1150)  # the chart and its legend
        driver.save_screenshot(str(shots / name))
