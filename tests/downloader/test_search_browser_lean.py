"""The search browser does only what a search needs: it loads no images (the engines'
collectors read full-size URLs from markup and JSON, never from a loaded thumbnail),
neither a search's window nor the browser's own builds any of the browser's UI pages
(address-bar popups, the new-tab page), and the wait for more results is polled in the
page; results past the first page still arrive. Browsers for strangers' pages still
load their images."""

from __future__ import annotations

import pytest

from downloader.browser import open_browser
from downloader.browsers import BrowserKeeper, _kept_of
from downloader.config import browser_options_from_settings, gather_options_from_settings
from downloader.gather import Request, gather
from tests.imagehosts import image_urls

pytestmark = pytest.mark.browser

PAGE = {"bing": "/images/search?q=fox", "google": "/search?q=fox&tbm=isch"}


@pytest.fixture
def thumbnails(start_image_host):
    """An image host for the results' thumbnails only: it counts what the browser asks."""
    return start_image_host()


@pytest.fixture
def site(start_imitation, image_hosts, thumbnails):
    return start_imitation(
        image_url=image_urls(image_hosts),
        total=120,
        thumbnail_url=lambda index: thumbnails.url(f"/img/{5000 + index}.jpeg?w=160&h=100"),
    )


def _more_results_asked(site) -> int:
    """The requests for results past the first page (the pages' own scroll scripts)."""
    with site.lock:
        return sum(1 for path, query in site.requests if path == "/images/async" or query.get("async") == "1")


@pytest.mark.parametrize("engine", ["bing", "google"])
def test_a_search_loads_no_thumbnail_and_still_collects_past_the_first_page(
    tmp_path, site, thumbnails, engine
):
    # The thumbnails are real: a browser for pages (which keeps images) asks for them.
    with open_browser(browser_options_from_settings(), for_pages=True) as driver:
        driver.get(site.base + PAGE[engine])
        assert driver.execute_script("return document.images.length") >= 20
    assert sum(thumbnails.hits.values()) >= 20
    thumbnails.hits.clear()

    events = []
    result = gather(
        Request(wanted=60, query="red fox", engine=engine),
        tmp_path,
        on_event=lambda kind, message, data: events.append(kind),
        options=gather_options_from_settings(),
    )
    assert len(result.kept) == 60 and "engine_failed" not in events
    assert "scrolled" in events and _more_results_asked(site) >= 1
    assert sum(thumbnails.hits.values()) == 0


def test_a_search_context_holds_its_tab_and_no_browser_ui_page(site):
    keeper = BrowserKeeper()
    try:
        for _ in range(2):  # the first context of a browser and a later one
            with keeper.lend(browser_options_from_settings()) as driver:
                driver.get(site.base + PAGE["bing"])
                context = driver.execute_cdp_cmd("Target.getTargetInfo", {})["targetInfo"]["browserContextId"]
                targets = _kept_of[driver].devtools.command("Target.getTargets")["targetInfos"]
                ours = [(t["type"], t["url"]) for t in targets if t.get("browserContextId") == context]
                assert ours == [("page", site.base + PAGE["bing"])]
                # Nor does the browser's own window (between searches) hold any: it is blank.
                assert [t["url"] for t in targets if t.get("browserContextId") != context] == ["about:blank"]
    finally:
        keeper.close()


class CountingDriver:
    """A real WebDriver that counts the scripts it is asked to run."""

    def __init__(self, driver) -> None:
        self._driver = driver
        self.scripts = 0

    def __getattr__(self, name: str) -> object:
        if name in ("execute_script", "execute_async_script"):
            self.scripts += 1
        return getattr(self._driver, name)


@pytest.mark.parametrize("engine", ["bing", "google"])
def test_waiting_for_the_next_results_is_one_call_not_one_per_poll(start_imitation, image_hosts, engine):
    from downloader.config import engine_options_from_settings
    from downloader.engines import get_engine
    from downloader.engines.base import SearchRules

    site = start_imitation(image_url=image_urls(image_hosts), total=120, batch_latency=1.0)
    with open_browser(browser_options_from_settings()) as driver:
        counting = CountingDriver(driver)
        found = list(
            get_engine(engine, engine_options_from_settings()).search(
                counting, "fox", wanted=40, rules=SearchRules()
            )
        )
    assert len(found) == 40 and _more_results_asked(site) == 1
    # The page, one read per batch, a scroll and its wait: a second's wait polled from
    # here every 0.1 s would have taken ten scripts and more.
    assert counting.scripts <= 6, counting.scripts
