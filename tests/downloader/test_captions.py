"""A caption for every image: the engine's title for search results, and for a page the
image's alt text, figure caption or title, else the page's title; plain text (entities
decoded, no markup, whitespace collapsed), at most 500 characters."""

from __future__ import annotations

import pytest

from downloader.browser import open_browser
from downloader.captions import MAX_CAPTION, caption_clean
from downloader.config import (
    browser_options_from_settings,
    engine_options_from_settings,
    page_options_from_settings,
)
from downloader.engines.base import SearchRules
from downloader.engines.bing import BingEngine
from downloader.engines.duckduckgo import DuckDuckGoEngine
from downloader.engines.page import extract_page_images


@pytest.mark.parametrize(
    ("raw", "caption"),
    [
        ("Red &amp; grey  fox", "Red & grey fox"),
        (
            "Tom&amp;#39;s <b>fox</b>\n\tin\u200b snow",
            "Tom's fox in snow",
        ),  # escaped twice, as titles often are
        ("\ue000Red fox\ue001 pictures", "Red fox pictures"),  # Bing's highlight marks
        ("&lt;script&gt;alert(1)&lt;/script&gt; fox", "alert(1) fox"),
        ('"><img src=x onerror=alert(2)>owl', '" owl'),
        ("a\x00b\x1bc", "abc"),
        (None, ""),
        ("   ", ""),
    ],
)
def test_a_caption_is_plain_text(raw, caption):
    assert caption_clean(raw) == caption


def test_a_caption_is_at_most_500_characters_cut_at_a_word():
    words = caption_clean("fox " * 400)
    assert len(words) <= MAX_CAPTION and words.endswith("fox") and len(words) > MAX_CAPTION - 10
    assert len(caption_clean("x" * 2000)) == MAX_CAPTION


TITLES = {1: "Red fox &amp; cubs", 2: "<b>Arctic</b>\n fox", 3: "\ue000Fox\ue001 " + "tail " * 200}


@pytest.mark.browser
@pytest.mark.imitation(total=3, titles=lambda i: TITLES[i])
@pytest.mark.parametrize("engine", [BingEngine, DuckDuckGoEngine])
def test_every_search_result_gets_the_engines_title_as_its_caption(driver, imitation, engine):
    found = list(engine(engine_options_from_settings()).search(driver, "fox", wanted=3, rules=SearchRules()))
    captions = [c.caption for c in found]
    assert captions[:2] == ["Red fox & cubs", "Arctic fox"]
    assert captions[2].startswith("Fox tail tail") and len(captions[2]) <= MAX_CAPTION
    assert all(captions)


@pytest.mark.browser
def test_a_pages_images_take_alt_then_figure_caption_then_title_then_the_page_title(start_imitation):
    site = start_imitation(scroll_wait=0.5)
    site.pages["/gallery"] = (
        "<html><head><title>Foxes &amp; friends</title></head><body>"
        '<img src="/a.jpg" alt="A  fox\n in snow" title="not this">'
        '<figure><img src="/b.jpg" alt=""><figcaption>An <em>arctic</em> fox</figcaption></figure>'
        '<img src="/c.jpg" title="Fox &quot;cub&quot;">'
        '<img src="/d.jpg"><a href="/e.png">e</a></body></html>'
    )
    with open_browser(browser_options_from_settings()) as driver:
        found = list(
            extract_page_images(
                driver, site.base + "/gallery", wanted=10, options=page_options_from_settings()
            )
        )
    assert [(c.url.rsplit("/", 1)[1], c.caption, c.rank) for c in found] == [
        ("a.jpg", "A fox in snow", 1),
        ("b.jpg", "An arctic fox", 2),
        ("c.jpg", 'Fox "cub"', 3),
        ("d.jpg", "Foxes & friends", 4),
        ("e.png", "Foxes & friends", 5),
    ]
