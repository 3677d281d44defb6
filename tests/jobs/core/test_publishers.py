"""Respect for publishers: noai / noimageai (X-Robots-Tag, meta robots) and robots.txt
are honoured, and imagedl names itself to the sites it fetches from."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from downloader.browser import open_browser
from downloader.collect import Candidate, collect_images
from downloader.config import (
    browser_options_from_settings,
    engine_options_from_settings,
    fetch_policy_from_settings,
    page_options_from_settings,
)
from downloader.engines import get_engine
from downloader.engines.base import EngineError, SearchRules
from downloader.engines.page import extract_page_images, robots_allows
from downloader.http import Fetcher, robots_tag_opts_out
from jobs.core.run import job_run
from jobs.models import JobStatus
from jobs.store import records
from tests.factories import make_job

GALLERY = '<!doctype html><html><head>{head}</head><body><img src="/img/1.jpg" alt="one"></body></html>'


def test_x_robots_tag_values():
    for opted_out in (
        "noai",
        "NoImageAI",
        "noindex, noai",
        "imagedl: noimageai",
        "otherbot: noindex, imagedl: noai",
    ):
        assert robots_tag_opts_out([opted_out]), opted_out
    for allowed in ("noindex, nofollow", "otherbot: noai", "unavailable_after: 2030-01-01, none", ""):
        assert not robots_tag_opts_out([allowed]), allowed
    assert robots_tag_opts_out(["noindex", "noai"])  # any of several headers


def test_the_default_user_agent_names_imagedl_and_the_public_url():
    from django.conf import settings

    assert (
        "imagedl" in settings.IMAGEDL_USER_AGENT and settings.IMAGEDL_BASE_URL in settings.IMAGEDL_USER_AGENT
    )
    assert fetch_policy_from_settings().user_agent == settings.IMAGEDL_USER_AGENT
    assert browser_options_from_settings().user_agent == settings.IMAGEDL_USER_AGENT


@pytest.mark.parametrize("respect", [True, False])
def test_downloads_skip_publishers_who_opt_out_unless_turned_off(settings, image_host, tmp_path, respect):
    settings.IMAGEDL_RESPECT_NOAI = respect
    urls = [
        image_host.url(f"/xrobots/{quote(value, safe='')}/img/{n}.jpeg")
        for n, value in enumerate(["noai", "noimageai", "googlebot: noai", "noindex"], 1)
    ]
    fetcher = Fetcher(fetch_policy_from_settings(extra_allowed=("127.0.0.0/8",)), concurrency=4, per_host=4)
    try:
        result = collect_images((Candidate(u) for u in urls), wanted=4, workdir=tmp_path, fetcher=fetcher)
    finally:
        fetcher.close()
    if respect:
        assert result.rejected == {"publisher_opt_out": 2}
        assert sorted(image.source_url for image in result.kept) == sorted(urls[2:])
    else:
        assert len(result.kept) == 4 and result.rejected == {}
    assert image_host.agents == {settings.IMAGEDL_USER_AGENT}  # every image request names imagedl


@pytest.mark.parametrize(
    "robots,status,page,allowed",
    [
        ("User-agent: *\nDisallow: /private/", 200, "/private/gallery", False),
        ("User-agent: *\nDisallow: /private/", 200, "/gallery", True),
        ("User-agent: imagedl\nDisallow: /", 200, "/gallery", False),
        ("User-agent: otherbot\nDisallow: /", 200, "/gallery", True),
        ("User-agent: *\nDisallow: /", 500, "/gallery", True),  # failing robots.txt: allowed
        (None, 404, "/gallery", True),  # missing robots.txt: allowed
    ],
)
def test_robots_txt(start_imitation, robots, status, page, allowed):
    site = start_imitation()
    site.robots_txt, site.robots_status = robots, status
    assert robots_allows(site.base + page, fetch_policy_from_settings()) is allowed


@pytest.fixture(scope="module")
def page_browser():
    with open_browser(browser_options_from_settings(), for_pages=True) as driver:
        yield driver


def extract(driver, url: str) -> list[str]:
    options = page_options_from_settings(scroll_wait=0.3)
    return [c.url for c in extract_page_images(driver, url, wanted=10, options=options)]


@pytest.mark.browser
def test_the_page_extractor_honours_robots_txt_noai_and_names_itself(settings, page_browser, start_imitation):
    site = start_imitation()
    site.robots_txt = "User-agent: *\nDisallow: /private/"
    site.pages["/private/gallery"] = site.pages["/gallery"] = GALLERY.format(head="")
    site.pages["/meta"] = GALLERY.format(head='<meta name="robots" content="index, noai">')
    site.pages["/header"] = GALLERY.format(head="")
    site.page_headers["/header"] = {"X-Robots-Tag": "noimageai"}

    assert extract(page_browser, site.base + "/gallery") == [site.base + "/img/1.jpg"]
    for path, reason in (
        ("/private/gallery", "robots_disallowed"),
        ("/meta", "publisher_opt_out"),
        ("/header", "publisher_opt_out"),
    ):
        with pytest.raises(EngineError) as refused:
            extract(page_browser, site.base + path)
        assert refused.value.reason == reason, path
    assert "/private/gallery" not in [path for path, _ in site.requests]  # robots.txt was asked first

    settings.IMAGEDL_RESPECT_NOAI = False  # the setting turns noai off (robots.txt stays)
    assert extract(page_browser, site.base + "/meta") and extract(page_browser, site.base + "/header")

    agents = {agent for path, agent in site.agents if path in ("/robots.txt", "/gallery", "/meta")}
    assert agents == {settings.IMAGEDL_USER_AGENT}


@pytest.mark.browser
@pytest.mark.imitation(total=5)
def test_search_engines_keep_the_browsers_own_user_agent(imitation):
    with open_browser(browser_options_from_settings()) as driver:
        engine = get_engine("bing", engine_options_from_settings())
        list(engine.search(driver, "fox", wanted=3, rules=SearchRules()))
    agents = {agent for path, agent in imitation.agents if path == "/images/search"}
    assert agents and not any("imagedl" in agent for agent in agents)


@pytest.mark.browser
@pytest.mark.django_db(databases=["default", "cassandra"])
def test_a_page_job_on_a_disallowed_page_fails_with_the_reason(cassandra_db, start_imitation):
    site = start_imitation()
    site.robots_txt = "User-agent: imagedl\nDisallow: /"
    site.pages["/gallery"] = GALLERY.format(head="")
    job = make_job(requested_count=1, page_url=site.base + "/gallery")
    assert job_run(job.id) == "failed: error"
    failed = records.job_get(job.id)
    assert failed.status == JobStatus.FAILED and "robots_disallowed" in failed.error
    assert "/gallery" not in [path for path, _ in site.requests]
