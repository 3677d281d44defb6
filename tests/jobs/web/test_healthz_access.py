"""Who sees /healthz's details (versions, timings, error texts): the token holder, by
header only, and a loopback caller only while no proxy is in front. This file stops no
Cassandra node (tests/ops/test_cassandra_node_and_health.py does)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])


def detailed(response) -> bool:
    return "ms" in response.json()["components"]["database"]


def test_a_loopback_caller_sees_details_only_without_a_proxy(client, cassandra_db, settings):
    settings.IMAGEDL_CLIENT_IP_HEADER = ""
    assert detailed(client.get("/healthz"))  # the test client connects from 127.0.0.1
    # A proxy on the same host: every request arrives from loopback, whoever sent it.
    settings.IMAGEDL_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    assert not detailed(client.get("/healthz", HTTP_X_FORWARDED_FOR="203.0.113.5"))
    assert not detailed(client.get("/healthz", HTTP_X_FORWARDED_FOR="127.0.0.1"))
    assert not detailed(client.get("/healthz"))


def test_the_token_counts_in_its_header_and_not_in_the_query_string(client, cassandra_db, settings):
    settings.IMAGEDL_CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    settings.IMAGEDL_HEALTHZ_TOKEN = "s3cret"
    assert detailed(client.get("/healthz", HTTP_X_HEALTHZ_TOKEN="s3cret"))
    assert detailed(client.get("/healthz", REMOTE_ADDR="203.0.113.5", HTTP_X_HEALTHZ_TOKEN="s3cret"))
    assert not detailed(client.get("/healthz?token=s3cret"))  # it would land in access logs
    assert not detailed(client.get("/healthz", HTTP_X_HEALTHZ_TOKEN="s3cre"))
    assert not detailed(client.get("/healthz", HTTP_X_HEALTHZ_TOKEN=""))
    settings.IMAGEDL_HEALTHZ_TOKEN = ""  # no token set: an empty header opens nothing
    assert not detailed(client.get("/healthz", HTTP_X_HEALTHZ_TOKEN=""))
