"""robots.txt as RFC 9309 says, with a maintained parser (protego): wildcards and
longest-match precedence; a robots.txt that answers 5xx or 429, or cannot be reached,
means disallow-all for that host; 4xx means allow; only its first 500 KiB are read."""

from __future__ import annotations

import pytest

from downloader.config import fetch_policy_from_settings
from downloader.engines.page import robots_allows
from downloader.robots import ROBOTS_MAX_BYTES


@pytest.mark.parametrize(
    "robots,page,allowed",
    [
        ("User-agent: *\nAllow: /\nDisallow: /gallery/", "/gallery/a.html", False),  # the longest match wins
        ("User-agent: *\nDisallow: /gallery/\nAllow: /gallery/open/", "/gallery/open/a.html", True),
        ("User-agent: *\nDisallow: /*.php$", "/gallery/index.php", False),  # * and $
        ("User-agent: *\nDisallow: /*.php$", "/gallery/index.php?page=2", True),
        ("User-agent: *\nDisallow: /*/private/", "/2026/private/owls.html", False),
        ("User-agent: otherbot\nDisallow: /\n\nUser-agent: imagedl\nAllow: /", "/gallery", True),
        ("User-agent: ImageDL\nDisallow: /gallery", "/gallery", False),  # product tokens ignore case
    ],
)
def test_rules_with_wildcards_and_longest_match(start_imitation, robots, page, allowed):
    site = start_imitation()
    site.robots_txt = robots
    assert robots_allows(site.base + page, fetch_policy_from_settings()) is allowed


@pytest.mark.parametrize(
    "status,allowed",
    [(500, False), (503, False), (429, False), (404, True), (403, True), (401, True), (410, True)],
)
def test_server_errors_disallow_and_client_errors_allow(start_imitation, status, allowed):
    site = start_imitation()
    site.robots_txt, site.robots_status = "User-agent: *\nAllow: /", status
    assert robots_allows(site.base + "/gallery", fetch_policy_from_settings()) is allowed


def test_an_unreachable_robots_txt_disallows_all(settings):
    settings.IMAGEDL_EXTRA_ALLOWED_NETWORKS = ["127.0.0.31/32"]
    assert (
        robots_allows("http://127.0.0.31:9/gallery", fetch_policy_from_settings()) is False
    )  # nothing listens there


def test_only_the_first_500_kib_are_read(start_imitation):
    site = start_imitation()
    padding = "# " + "x" * 97 + "\n"
    filler = padding * ((ROBOTS_MAX_BYTES // len(padding)) + 10)  # past 500 KiB
    site.robots_txt = "User-agent: *\nDisallow: /early/\n" + filler + "Disallow: /late/\n"
    assert ROBOTS_MAX_BYTES == 500 * 1024
    assert robots_allows(site.base + "/early/a.html", fetch_policy_from_settings()) is False
    assert (
        robots_allows(site.base + "/late/a.html", fetch_policy_from_settings()) is True
    )  # a rule past the limit is not read
