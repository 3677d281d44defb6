"""Search engines through a real headless Chromium against local imitations."""

from __future__ import annotations

import pytest

from downloader.config import engine_options_from_settings
from downloader.engines import search_with_fallback
from downloader.engines.base import Engine, EngineBlocked, EngineError, SearchRules
from downloader.engines.bing import BingEngine, filter_param
from downloader.engines.duckduckgo import DuckDuckGoEngine
from downloader.engines.google import GoogleEngine

pytestmark = [pytest.mark.browser, pytest.mark.imitation(total=150, see_more_after=70)]


def configured(kind: type[Engine]) -> Engine:
    """The engine as the settings say: pointed at the imitation."""
    return kind(engine_options_from_settings())


def test_bing_collects_distinct_full_size_urls_through_scrolls_and_see_more(driver, imitation):
    events = []
    found = list(
        configured(BingEngine).search(
            driver, "red fox", wanted=120, rules=SearchRules(), on_event=lambda k, d: events.append(k)
        )
    )
    assert len(found) == 120
    assert len({c.url for c in found}) == 120
    assert [c.url for c in found] == [imitation.image_url(i) for i in range(1, 121)]  # no repeats, no gaps
    assert all("/th?id=" not in c.url for c in found)
    assert found[0].page_url == "http://example.org/article/1"
    firsts = [int(q["first"]) for p, q in imitation.requests if p == "/images/async"]
    assert firsts == sorted(set(firsts))  # `first` advances by what was returned
    assert firsts[:2] == [36, 71]
    assert "scrolled" in events


def test_bing_stops_as_soon_as_enough(driver, imitation):
    found = list(configured(BingEngine).search(driver, "cats", wanted=40, rules=SearchRules()))
    assert len(found) == 40
    assert imitation.count("/images/async") == 1  # one batch of 35 after the first page


def test_bing_returns_what_exists_when_asked_for_more(driver, imitation):
    events = []
    found = list(
        configured(BingEngine).search(
            driver, "rare", wanted=400, rules=SearchRules(), on_event=lambda k, d: events.append(k)
        )
    )
    assert len(found) == 150
    assert events[-1] == "results_end"


def test_bing_captcha_is_reported_not_saved(driver, imitation):
    imitation.modes["bing"] = "captcha"
    with pytest.raises(EngineBlocked) as caught:
        list(configured(BingEngine).search(driver, "x", wanted=10, rules=SearchRules()))
    assert caught.value.reason == "captcha"


def test_bing_thumbnails_are_never_results(driver, imitation):
    imitation.modes["bing"] = "thumbnails"
    imitation.total = 30
    assert list(configured(BingEngine).search(driver, "x", wanted=10, rules=SearchRules())) == []


def test_bing_filter_parameters():
    assert filter_param(SearchRules(min_width=800, min_height=600)) == "+filterui:imagesize-custom_800_600"
    assert filter_param(SearchRules(formats={"gif"})) == "+filterui:photo-animatedgif"
    assert filter_param(SearchRules()) == ""
    assert filter_param(SearchRules(formats={"png"})) == ""  # not "transparent": opaque PNGs count too


def test_duckduckgo_reads_full_size_urls_from_its_json(driver, imitation):
    found = list(configured(DuckDuckGoEngine).search(driver, "owl", wanted=130, rules=SearchRules()))
    assert [c.url for c in found] == [imitation.image_url(i) for i in range(1, 131)]
    assert found[0].width == 640


@pytest.mark.parametrize(
    "mode,error,reason",
    [
        ("captcha", EngineBlocked, "captcha"),
        ("rate_limited", EngineBlocked, "rate_limited"),
        ("thumbnails", EngineError, "thumbnails_only"),
    ],
)
def test_duckduckgo_problems_are_recognised(driver, imitation, mode, error, reason):
    imitation.modes["duckduckgo"] = mode
    with pytest.raises(error) as caught:
        list(configured(DuckDuckGoEngine).search(driver, "owl", wanted=10, rules=SearchRules()))
    assert caught.value.reason == reason


def test_google_reads_imgurl_and_scrolls_for_more(driver, imitation):
    found = list(configured(GoogleEngine).search(driver, "heron", wanted=50, rules=SearchRules()))
    assert [c.url for c in found] == [imitation.image_url(i) for i in range(1, 51)]
    assert found[0].page_url == "http://example.org/g/1"


@pytest.mark.parametrize(
    "mode,reason", [("captcha", "captcha"), ("consent", "consent"), ("thumbnails", "thumbnails_only")]
)
def test_google_walls_and_thumbnails_are_recognised(driver, imitation, mode, reason):
    imitation.modes["google"] = mode
    with pytest.raises(EngineError) as caught:
        list(configured(GoogleEngine).search(driver, "heron", wanted=10, rules=SearchRules()))
    assert caught.value.reason == reason


def test_fallback_moves_on_and_records_why(driver, imitation):
    imitation.modes["bing"] = "captcha"
    imitation.total = 60
    events = []
    found = list(
        search_with_fallback(
            ["bing", "duckduckgo", "google"],
            driver,
            "fox",
            100,
            SearchRules(),
            lambda k, d: events.append((k, d)),
            engine_options_from_settings(),
        )
    )
    # DuckDuckGo gives all 60; Google then offers the same 60 URLs again (handed on:
    # the collector is the one place repeats are dropped, see test_collect_distinct).
    assert len(found) == 100 and len({c.url for c in found}) == 60
    assert (
        "engine_failed",
        {"engine": "bing", "reason": "captcha", "detail": "captcha: Bing asked for a CAPTCHA"},
    ) in events
    assert ("engine_exhausted", {"engine": "duckduckgo", "found": 60}) in events
    assert {c.engine for c in found[:60]} == {"duckduckgo"}
    assert {c.engine for c in found[60:]} == {"google"}
    assert {c.url for c in found[60:]} <= {c.url for c in found[:60]}
