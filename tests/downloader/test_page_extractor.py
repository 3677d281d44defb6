"""The page extractor picks the largest candidate of every image on a real page."""

from __future__ import annotations

import pytest

from downloader.browser import open_browser
from downloader.config import (
    browser_options_from_settings,
    fetch_policy_from_settings,
    page_options_from_settings,
)
from downloader.engines.base import Candidate, EngineError
from downloader.engines.page import extract_page_images, largest_from_srcset, pick_urls
from tests.network import addresses_only

PAGE = """<!doctype html><html><head>
<meta property="og:image" content="/social/cover.jpg">
<style>.spacer{height:2500px}</style></head><body>
<img src="/small/a.jpg" srcset="/img/a-480.jpg 480w, /img/a-1600.jpg 1600w, /img/a-800.jpg 800w">
<img src="/placeholder.gif" data-src="/lazy/b.jpg">
<picture><source srcset="/pic/c-1x.webp 1x, /pic/c-2x.webp 2x"><img src="/pic/c.jpg"></picture>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<a href="/files/d.png">download</a> <a href="/about">about</a>
<a href="https://cdn.example.net/e.jpeg?size=large">big</a>
<div class="spacer"></div>
<div id="late"></div>
<script>
window.addEventListener('scroll', () => {
  if (!document.getElementById('lazyadded')) {
    const img = document.createElement('img'); img.id = 'lazyadded'; img.src = '/late/f.jpg';
    document.getElementById('late').appendChild(img);
  }
});
</script>
<img src="/small/a.jpg">
</body></html>"""


def test_srcset_largest():
    assert largest_from_srcset("a.jpg 480w, b.jpg 1600w, c.jpg 800w") == ("b.jpg", 1600.0)
    assert largest_from_srcset("a.jpg 1x, b.jpg 2x")[0] == "b.jpg"
    assert largest_from_srcset("only.jpg")[0] == "only.jpg"


def extract(driver, url: str, *, wanted: int, **overrides: object) -> list[Candidate]:
    """The page's candidates, read as the settings say (their address rules, scroll wait)."""
    options = page_options_from_settings(**overrides)
    return list(extract_page_images(driver, url, wanted=wanted, options=options))


def test_pick_urls_resolves_and_skips_data_and_duplicates():
    urls = pick_urls(
        {
            "base": "http://site.test/dir/page.html",
            "imgs": [
                {"src": "x.jpg", "srcset": "", "sets": [], "lazy": []},
                {"src": "data:abc", "sets": [], "lazy": []},
            ],
            "links": ["x.jpg", "/doc.pdf", "javascript:void(0)"],
            "metas": [],
        }
    )
    assert urls == ["http://site.test/dir/x.jpg"]


@pytest.mark.browser
def test_a_real_page_with_lazy_images_srcsets_links_and_og_image(start_imitation):
    server = start_imitation(scroll_wait=1.0)
    server.pages["/gallery"] = PAGE
    with open_browser(browser_options_from_settings()) as driver:
        found = extract(driver, server.base + "/gallery", wanted=50)
    base = server.base
    urls = [c.url for c in found]
    assert urls[0] == base + "/social/cover.jpg"
    for expected in ["/img/a-1600.jpg", "/lazy/b.jpg", "/pic/c-2x.webp", "/files/d.png", "/late/f.jpg"]:
        assert base + expected in urls
    assert "https://cdn.example.net/e.jpeg?size=large" in urls
    assert base + "/img/a-480.jpg" not in urls and base + "/placeholder.gif" not in urls
    assert len(urls) == len(set(urls))
    assert all(c.page_url == base + "/gallery" for c in found)


@pytest.mark.browser
def test_pages_on_private_addresses_are_refused_before_and_after_loading(settings, start_imitation):
    settings.IMAGEDL_ALLOW_PRIVATE_NETWORKS = False
    allowed = start_imitation(address="127.0.0.23")
    private = start_imitation(address="127.0.0.24")
    settings.IMAGEDL_EXTRA_ALLOWED_NETWORKS = ["127.0.0.23/32"]  # stands in for a public site
    allowed.pages["/gallery"] = private.pages["/gallery"] = PAGE
    allowed.redirects["/moved"] = private.base + "/gallery"
    with open_browser(browser_options_from_settings()) as driver:
        with pytest.raises(EngineError) as direct:
            extract(driver, private.base + "/gallery", wanted=5)
        assert direct.value.reason == "private_address"
        assert private.requests == []  # refused before the browser went there

        assert extract(driver, allowed.base + "/gallery", wanted=3)

        with pytest.raises(EngineError) as moved:
            extract(driver, allowed.base + "/moved", wanted=5)
        assert moved.value.reason == "private_address"
        assert "redirected" in str(moved.value)


@pytest.mark.browser
def test_through_the_egress_guard_a_page_cannot_make_the_browser_reach_private_addresses(
    settings, start_imitation
):
    from downloader.egress import EgressGuard

    settings.IMAGEDL_ALLOW_PRIVATE_NETWORKS = False
    site = start_imitation(address="127.0.0.25")
    inside = start_imitation(address="127.0.0.26")
    settings.IMAGEDL_EXTRA_ALLOWED_NETWORKS = ["127.0.0.25/32"]  # stands in for a public site
    inside.pages["/secret.jpg"] = "secret"
    site.pages["/gallery"] = (
        "<!doctype html><html><body>"
        f'<img src="/img/own.jpg"><img src="{inside.base}/secret.jpg">'
        f'<iframe src="{inside.base}/secret.jpg"></iframe>'
        f"<script>fetch('{inside.base}/secret.jpg', {{mode: 'no-cors'}}).catch(() => 0);</script>"
        "</body></html>"
    )
    # The settings' rules (.25 allowed, the rest of 127/8 private), not the tests'
    # loopback-only mode; names (Chromium's own calls home) resolve to nothing.
    guard = EgressGuard(fetch_policy_from_settings(), addresses_only, loopback_only=False)
    with guard, open_browser(browser_options_from_settings(), egress=guard) as driver:
        found = [c.url for c in extract(driver, site.base + "/gallery", wanted=10, scroll_wait=0.5)]
        refused = guard.refused
    assert site.base + "/img/own.jpg" in found  # the page itself loads through the guard
    assert inside.requests == []  # not one request reached the private host
    to_inside = [reason for url, reason in refused if url.startswith(inside.base)]
    assert to_inside and set(to_inside) == {"private_address"}  # the img, the frame, the script's fetch
