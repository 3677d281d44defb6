"""Safe search and the engine filters hold on every page of results, not only the
first: each engine's preference is carried for the whole browser session (Bing's
SRCHHPGUSR cookie and adlt, DuckDuckGo's kp cookie, kp and p, Google's safe on every
request), and the imitations' scroll scripts know only what the page URL and the
cookies carry, as the engines' own scripts do. Three or more pages each."""

from __future__ import annotations

import pytest

from downloader.browser import open_browser
from downloader.choices import Filters
from downloader.config import browser_options_from_settings, engine_options_from_settings
from downloader.engines import get_engine
from downloader.engines.base import SearchRules

pytestmark = [
    pytest.mark.browser,
    pytest.mark.imitation(total=300, scroll_wait=1.0, traits=lambda i: {"layout": "wide"}),
]
# Enough results for three requests or more: Bing 35 a page, DuckDuckGo 100, Google 20.
WANTED = {"bing": 100, "duckduckgo": 250, "google": 60}
# What each engine can tell apart: Google knows only on ("active") and off.
SERVED = {
    "bing": {"strict": "strict", "moderate": "moderate", "off": "off"},
    "duckduckgo": {"strict": "strict", "moderate": "moderate", "off": "off"},
    "google": {"strict": "strict", "moderate": "strict", "off": "off"},
}


@pytest.mark.parametrize("engine", ["bing", "duckduckgo", "google"])
@pytest.mark.parametrize("setting", ["strict", "off"])
def test_every_page_asks_for_the_setting_and_the_filters(imitation, engine, setting):
    rules = SearchRules(safe_search=setting, filters=Filters(layout="wide"))
    engine_options = engine_options_from_settings()
    with open_browser(browser_options_from_settings()) as driver:  # its own: no cookie from another test
        found = list(
            get_engine(engine, engine_options).search(driver, "owls", wanted=WANTED[engine], rules=rules)
        )
    assert len(found) == WANTED[engine]
    pages = [(path, level, asked) for name, path, level, asked in imitation.served if name == engine]
    assert len(pages) >= 3, pages
    assert {level for _, level, _ in pages} == {SERVED[engine][setting]}, pages
    assert all(asked == {"layout": "wide"} for _, _, asked in pages), pages
