"""Who may read /metrics: loopback callers (unless a proxy's header names the clients),
and anyone with the bearer token; everyone else gets a 404, on the web and on the
worker's listener."""

from __future__ import annotations

import pytest
import requests

from jobs.ops.exposition import metrics_access_allowed
from jobs.ops.listener import metrics_listener_start
from tests.mailserver import free_port

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])
STRANGER = "203.0.113.9"  # never connected to: the test client only names it


@pytest.fixture(autouse=True)
def _keyspace(cassandra_db):
    """The gauges read the job tables."""


def test_loopback_reads_the_metrics_and_a_stranger_gets_404(client, settings):
    settings.IMAGEDL_METRICS_TOKEN = ""
    answer = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain; version=0.0.4")
    text = answer.content.decode()
    assert "# HELP imagedl_jobs_finished_total" in text and 'imagedl_jobs{state="scheduled"}' in text
    assert client.get("/metrics", REMOTE_ADDR=STRANGER).status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_the_token_lets_a_stranger_in_and_nothing_else_does(client, settings):
    settings.IMAGEDL_METRICS_TOKEN = "metrics-token-0123456789"
    assert (
        client.get(
            "/metrics", REMOTE_ADDR=STRANGER, HTTP_AUTHORIZATION="Bearer metrics-token-0123456789"
        ).status_code
        == 200
    )
    for wrong in (
        "Bearer metrics-token-012345678",
        "Bearer ",
        "Basic metrics-token-0123456789",
        "metrics-token-0123456789",
    ):
        assert client.get("/metrics", REMOTE_ADDR=STRANGER, HTTP_AUTHORIZATION=wrong).status_code == 404, (
            wrong
        )
    assert (
        client.get(f"/metrics?token={settings.IMAGEDL_METRICS_TOKEN}", REMOTE_ADDR=STRANGER).status_code
        == 404
    )


def test_behind_a_proxy_loopback_no_longer_counts(client, settings):
    """Every request comes through the proxy on loopback: only the token lets in."""
    settings.IMAGEDL_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    settings.IMAGEDL_METRICS_TOKEN = "metrics-token-0123456789"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404
    answer = client.get(
        "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789"
    )
    assert answer.status_code == 200


def test_no_token_configured_means_no_token_works(settings):
    settings.IMAGEDL_METRICS_TOKEN = ""
    assert not metrics_access_allowed(STRANGER, "Bearer ")
    assert not metrics_access_allowed(STRANGER, "Bearer anything")
    settings.IMAGEDL_METRICS_TOKEN = "t0ken-t0ken-t0ken"
    assert metrics_access_allowed(STRANGER, "bearer t0ken-t0ken-t0ken")
    assert not metrics_access_allowed(STRANGER, "Bearer t0ken-t0ken-t0keN")


def test_the_worker_listener_answers_metrics_on_loopback_and_404_elsewhere(settings):
    settings.IMAGEDL_METRICS_TOKEN = ""
    port = free_port()
    server = metrics_listener_start("127.0.0.1", port)
    try:
        base = f"http://127.0.0.1:{port}"
        answer = requests.get(f"{base}/metrics", timeout=10)
        assert answer.status_code == 200 and "imagedl_images_kept_total" in answer.text
        assert requests.get(f"{base}/", timeout=10).status_code == 404
        assert requests.post(f"{base}/metrics", timeout=10).status_code in (404, 501)
        assert metrics_listener_start("127.0.0.1", port) is None  # the port is taken: no crash
    finally:
        server.shutdown()
        server.server_close()
    assert metrics_listener_start("127.0.0.1", 0) is None  # off
