"""Configuration read once, at start-up: submission limits and the form's address rule."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from jobs.lib.ratelimit import configured_rate
from jobs.web.forms import check_public_url
from tests.paths import REPO


def test_a_bad_rate_stops_start_up_naming_the_setting():
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEDL_")}
    environ.update(IMAGEDL_SUBMIT_RATE_PER_IP="lots", DJANGO_SETTINGS_MODULE="imagedl_site.settings")
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "IMAGEDL_SUBMIT_RATE_PER_IP='lots': expected a rate like 20/h" in result.stderr


def test_rates_are_parsed_again_when_a_setting_changes(settings):
    settings.IMAGEDL_SUBMIT_RATE_PER_EMAIL = "3/m"
    assert configured_rate("email") == (3, 60)
    settings.IMAGEDL_SUBMIT_RATE_PER_IP = "0"
    assert configured_rate("ip") == (0, 0)
    with pytest.raises(ImproperlyConfigured, match="IMAGEDL_SUBMIT_RATE_PER_IP='7/x'"):
        settings.IMAGEDL_SUBMIT_RATE_PER_IP = "7/x"


def test_the_form_uses_the_chokepoints_rule_with_extra_allowed_networks(settings):
    """A page on an allowed internal network is accepted by the form, as the worker
    would fetch it (the form used to leave IMAGEDL_EXTRA_ALLOWED_NETWORKS out)."""
    settings.IMAGEDL_ALLOW_PRIVATE_NETWORKS = False
    settings.IMAGEDL_EXTRA_ALLOWED_NETWORKS = []
    refused = check_public_url("http://127.0.0.5:8080/gallery")
    assert refused is not None and "private or local network" in refused
    settings.IMAGEDL_EXTRA_ALLOWED_NETWORKS = ["127.0.0.0/29"]
    assert check_public_url("http://127.0.0.5:8080/gallery") is None
    assert "private or local network" in check_public_url("http://127.0.0.9:8080/gallery")
    assert "http:// or https://" in check_public_url("ftp://127.0.0.5/gallery")
