"""Bing Images: results page, metadata JSON per result, infinite scroll, "see more".

Every locator and URL shape of Bing is in this file; a markup change is a one-file fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

from downloader.captions import caption_first
from downloader.choices import DOMINANT_COLOURS
from downloader.engines.base import (
    Candidate,
    Engine,
    EngineBlocked,
    EventCallback,
    FilterWords,
    SearchRules,
    cookie_set,
    engine_filters,
    is_http_url,
    is_thumbnail,
    no_events,
    report_unapplied,
    results_loop,
    wait_in_page,
)

# --- locators ----------------------------------------------------------------------
RESULT_LINK = "a.iusc"  # attribute m: HTML-escaped JSON with murl (full size), purl, turl, t (title), desc
SEE_MORE_BUTTON = ".btn_seemore"
CAPTCHA_MARKERS = ("#b_captcha", "form[action*='captcha']", "#bnp_hfly_cta")
SEARCH_PATH = "/images/search"
SAFE_SEARCH_PARAM = "adlt"  # Bing's own words: strict, moderate, off (on the first page only)
# Its scroll requests carry no ``adlt``: Bing reads the session's preference from this
# cookie (``ADLT=STRICT|DEMOTE|OFF``), else serves moderate.
PREFERENCES_COOKIE = "SRCHHPGUSR"
SAFE_SEARCH_COOKIE = {"strict": "ADLT=STRICT", "moderate": "ADLT=DEMOTE", "off": "ADLT=OFF"}
# The filters, each a ``+filterui:`` piece of ``qft``; Bing has every one.
FILTER_WORDS: FilterWords = {
    "license": {"cc": "+filterui:licenseType-Any", "public": "+filterui:license-L1"},
    "colour": {
        "color": "+filterui:color2-color",
        "bw": "+filterui:color2-bw",
        **{name: f"+filterui:color2-FGcls_{name.upper()}" for name in DOMINANT_COLOURS},
    },
    "layout": {name: f"+filterui:aspect-{name}" for name in ("square", "wide", "tall")},
    "size": {name: f"+filterui:imagesize-{name}" for name in ("large", "wallpaper")},
    "type": {
        "photo": "+filterui:photo-photo",
        "clipart": "+filterui:photo-clipart",
        "line": "+filterui:photo-linedrawing",
        "animated": "+filterui:photo-animatedgif",
    },
    "freshness": {  # age in minutes
        "day": "+filterui:age-lt1440",
        "week": "+filterui:age-lt10080",
        "month": "+filterui:age-lt43200",
    },
}
THUMBNAIL_MARKERS = (
    *(f"tse{n}.mm.bing.net" for n in range(1, 5)),  # Bing's thumbnail hosts
    "/th?id=",
    "/th/id/",
)

READ_RESULTS_JS = """
const links = document.querySelectorAll(arguments[0]);
const out = [];
for (let i = arguments[1]; i < links.length; i++) out.push(links[i].getAttribute('m'));
return out;
"""
# Polled in the page after a scroll (args: RESULT_LINK, results so far, SEE_MORE_BUTTON):
# true once more results are in; clicks "see more" whenever it shows.
MORE_RESULTS_JS = """
if (document.querySelectorAll(args[0]).length > args[1]) return true;
const b = document.querySelector(args[2]);
if (b) {
  const r = b.getBoundingClientRect();
  if (r.width > 0 && r.height > 0 && getComputedStyle(b).visibility !== 'hidden') b.click();
}
return false;
"""
BLOCKED_JS = "return arguments[0].some(sel => document.querySelector(sel) !== null);"


def filter_param(rules: SearchRules) -> str:
    """Bing's qft filter string for the request's rules (its filters first)."""
    applied, _ = engine_filters(rules.filters, FILTER_WORDS)
    parts = list(applied.values())
    # A size filter stands for the minimum size too (that is still checked on the bytes).
    if "size" not in applied and (rules.min_width >= 1 or rules.min_height >= 1):
        parts.append(f"+filterui:imagesize-custom_{max(rules.min_width, 1)}_{max(rules.min_height, 1)}")
    # Bing filters by kind, not by file format: only "animated GIF" maps onto a format
    # ("transparent" would drop every opaque PNG). Formats are checked on the bytes.
    if "type" not in applied and rules.formats == {"gif"}:
        parts.append("+filterui:photo-animatedgif")
    return "".join(parts)


class BingEngine(Engine):
    name = "bing"

    default_url = "https://www.bing.com"

    def results_url(self, query: str, rules: SearchRules) -> str:
        params = {"q": query, "form": "HDRSC2", "first": "1", SAFE_SEARCH_PARAM: rules.safe_search}
        qft = filter_param(rules)
        if qft:
            params["qft"] = qft
        return f"{self.base_url()}{SEARCH_PATH}?{urlencode(params)}"

    def search(
        self, driver, query: str, *, wanted: int, rules: SearchRules, on_event: EventCallback | None = None
    ) -> Iterator[Candidate]:
        emit = on_event or no_events
        cookie_set(driver, self.base_url(), PREFERENCES_COOKIE, SAFE_SEARCH_COOKIE[rules.safe_search])
        driver.get(self.results_url(query, rules))
        if (
            driver.execute_script(BLOCKED_JS, list(CAPTCHA_MARKERS))
            or "captcha" in driver.current_url.lower()
        ):
            raise EngineBlocked("captcha", "Bing asked for a CAPTCHA")
        emit("page_loaded", {"engine": self.name})
        report_unapplied(emit, self.name, engine_filters(rules.filters, FILTER_WORDS)[1])
        yield from results_loop(
            engine=self.name,
            wanted=wanted,
            emit=emit,
            read_batch=lambda start: driver.execute_script(READ_RESULTS_JS, RESULT_LINK, start),
            to_candidate=self._candidate,
            load_more=lambda count: self._load_more(driver, count),
        )

    def _candidate(self, raw: str | None) -> Candidate | None:
        if not raw:
            return None
        try:
            meta = json.loads(raw)
        except ValueError:
            return None
        url = meta.get("murl")
        if not is_http_url(url) or is_thumbnail(url, THUMBNAIL_MARKERS):
            return None
        page = meta.get("purl") if is_http_url(meta.get("purl")) else ""
        return Candidate(
            url=url,
            page_url=page,
            caption=caption_first(meta.get("t"), meta.get("desc")),
            engine=self.name,
        )

    def _load_more(self, driver, count: int) -> bool:
        """Scroll (and click "see more" when it shows) until more results appear."""
        driver.execute_script("window.scrollTo(0, document.body.scrollHeight);")
        args = [RESULT_LINK, count, SEE_MORE_BUTTON]
        return wait_in_page(driver, MORE_RESULTS_JS, args, self.scroll_wait())
