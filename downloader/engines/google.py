"""Google Images: full-size URLs from the ``imgurl`` of ``/imgres`` links.

Google changes its markup often; everything about it is in this file. Consent walls,
CAPTCHA pages and thumbnail-only results are recognised and reported, never saved.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from downloader.choices import DOMINANT_COLOURS
from downloader.engines.base import (
    Candidate,
    Engine,
    EngineBlocked,
    EngineError,
    EventCallback,
    FilterWords,
    SearchRules,
    Tally,
    engine_filters,
    is_http_url,
    is_thumbnail,
    no_events,
    report_unapplied,
    results_loop,
    wait_in_page,
)

SEARCH_PATH = "/search"
# Google has only on and off: strict and moderate both mean "active".
SAFE_SEARCH_VALUES = {"strict": "active", "moderate": "active", "off": "off"}
# The filters, each a piece of ``tbs`` (joined by commas). Google's usage rights know
# Creative Commons but not public domain, and its sizes stop at "large" (no wallpaper).
FILTER_WORDS: FilterWords = {
    "license": {"cc": "il:cl"},
    "colour": {
        "color": "ic:color",
        "bw": "ic:gray",
        **{name: f"ic:specific,isc:{name}" for name in DOMINANT_COLOURS},
    },
    "layout": {"square": "iar:s", "wide": "iar:w", "tall": "iar:t"},
    "size": {"large": "isz:l"},
    "type": {
        "photo": "itp:photo",
        "clipart": "itp:clipart",
        "line": "itp:lineart",
        "animated": "itp:animated",
    },
    "freshness": {"day": "qdr:d", "week": "qdr:w", "month": "qdr:m"},
}
RESULT_LINK = "a[href*='/imgres?']"
CONSENT_MARKERS = ("#W0wltc", "form[action*='consent']")
CAPTCHA_URL_PART = "/sorry/"
THUMBNAIL_MARKERS = ("encrypted-tbn", "gstatic.com/images?q=tbn")

READ_LINKS_JS = """
const links = document.querySelectorAll(arguments[0]);
const out = [];
for (let i = arguments[1]; i < links.length; i++) out.push(links[i].getAttribute('href'));
return out;
"""
COUNT_JS = "return document.querySelectorAll(arguments[0]).length;"
MORE_RESULTS_JS = "return document.querySelectorAll(args[0]).length > args[1];"  # wait_in_page
BLOCKED_JS = "return arguments[0].some(sel => document.querySelector(sel) !== null);"


class GoogleEngine(Engine):
    name = "google"

    default_url = "https://www.google.com"

    def search(
        self, driver, query: str, *, wanted: int, rules: SearchRules, on_event: EventCallback | None = None
    ) -> Iterator[Candidate]:
        emit = on_event or no_events
        params = {"q": query, "tbm": "isch", "hl": "en", "safe": SAFE_SEARCH_VALUES[rules.safe_search]}
        applied, unapplied = engine_filters(rules.filters, FILTER_WORDS)
        if "size" not in applied and (rules.min_width >= 1000 or rules.min_height >= 1000):
            applied["size"] = "isz:l"
        if applied:
            params["tbs"] = ",".join(applied.values())
        driver.get(f"{self.base_url()}{SEARCH_PATH}?{urlencode(params)}")
        if CAPTCHA_URL_PART in driver.current_url:
            raise EngineBlocked("captcha", "Google asked for a CAPTCHA")
        if driver.execute_script(BLOCKED_JS, list(CONSENT_MARKERS)) or "consent." in driver.current_url:
            raise EngineBlocked("consent", "Google showed a consent wall")
        emit("page_loaded", {"engine": self.name})
        report_unapplied(emit, self.name, unapplied)
        page_url = driver.current_url

        def to_candidate(href: object) -> Candidate | None:
            query_args = parse_qs(urlsplit(urljoin(page_url, str(href or ""))).query)
            url = (query_args.get("imgurl") or [""])[0]
            if not is_http_url(url) or is_thumbnail(url, THUMBNAIL_MARKERS):
                return None
            page = (query_args.get("imgrefurl") or [""])[0]
            return Candidate(url=url, page_url=page if is_http_url(page) else "", engine=self.name)

        def check(tally: Tally) -> None:
            if tally.yielded:
                return
            if tally.read == 0:
                if driver.execute_script(COUNT_JS, "img"):
                    raise EngineError("thumbnails_only", "Google showed only thumbnails")
                raise EngineError("no_results", "Google showed no results")
            if tally.unusable >= tally.read:
                raise EngineError("thumbnails_only", "Google offered only thumbnails")

        def load_more(count: int) -> bool:
            driver.execute_script("window.scrollTo(0, document.body.scrollHeight);")
            return wait_in_page(driver, MORE_RESULTS_JS, [RESULT_LINK, count], self.scroll_wait())

        yield from results_loop(
            engine=self.name,
            wanted=wanted,
            emit=emit,
            read_batch=lambda start: driver.execute_script(READ_LINKS_JS, RESULT_LINK, start),
            to_candidate=to_candidate,
            load_more=load_more,
            check=check,
        )
