"""DuckDuckGo Images: a vqd token from the results page, then its JSON result pages.

Every locator and URL shape of DuckDuckGo is in this file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import urlencode

from downloader.captions import caption_clean
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
    cookie_set,
    engine_filters,
    is_http_url,
    is_thumbnail,
    no_events,
    report_unapplied,
    results_loop,
)

PAGE_PATH = "/"
JSON_PATH = "/i.js"
VQD_PATTERN = re.compile(r"vqd=['\"]?([\d-]+)")
THUMBNAIL_MARKERS = ("external-content.duckduckgo.com", "/iu/?u=", "tse1.mm.bing.net", "tse2.mm.bing.net")
BLOCKED_STATUSES = (202, 403, 418, 429)
# Safe search: ``kp`` on the page and its JSON (1 strict, -1 moderate, -2 off); the JSON
# endpoint also reads ``p`` (1 filtered, -1 not).
SAFE_SEARCH_KP = {"strict": "1", "moderate": "-1", "off": "-2"}
SAFE_SEARCH_P = {"strict": "1", "moderate": "1", "off": "-1"}
# The filters, each a ``slot:Value`` of the JSON's ``f`` (DuckDuckGo has every one; its
# types are photo, clipart, gif, transparent and line).
FILTER_WORDS: FilterWords = {
    "license": {"cc": "license:Any", "public": "license:Public"},
    "colour": {
        "color": "color:color",
        "bw": "color:Monochrome",
        **{name: f"color:{name.capitalize()}" for name in DOMINANT_COLOURS},
    },
    "layout": {name: f"layout:{name.capitalize()}" for name in ("square", "wide", "tall")},
    "size": {name: f"size:{name.capitalize()}" for name in ("large", "wallpaper")},
    "type": {"photo": "type:photo", "clipart": "type:clipart", "line": "type:line", "animated": "type:gif"},
    "freshness": {name: f"time:{name.capitalize()}" for name in ("day", "week", "month")},
}
F_SLOTS = ("time", "size", "type", "layout", "color", "license")  # the order of ``f``


def filter_param(rules: SearchRules) -> tuple[str, list[str]]:
    """The JSON's ``f`` for the request's rules, and the filters it could not apply."""
    applied, unapplied = engine_filters(rules.filters, FILTER_WORDS)
    slots = dict.fromkeys(F_SLOTS, "")
    slots.update(word.split(":", 1) for word in applied.values())
    if not slots["size"] and (rules.min_width >= 1000 or rules.min_height >= 1000):
        slots["size"] = "Large"
    # Only gif is a file format among the types. Formats are checked on the bytes anyway.
    if not slots["type"] and rules.formats == {"gif"}:
        slots["type"] = "gif"
    return ",".join(f"{slot}:{value}" for slot, value in slots.items()), unapplied


FETCH_JSON_JS = """
const done = arguments[arguments.length - 1];
fetch(arguments[0], {credentials: 'same-origin'})
  .then(r => r.text().then(t => done([r.status, t])))
  .catch(e => done([0, String(e)]));
"""


class DuckDuckGoEngine(Engine):
    name = "duckduckgo"

    default_url = "https://duckduckgo.com"

    def search(
        self, driver, query: str, *, wanted: int, rules: SearchRules, on_event: EventCallback | None = None
    ) -> Iterator[Candidate]:
        emit = on_event or no_events
        kp = SAFE_SEARCH_KP[rules.safe_search]
        cookie_set(driver, self.base_url(), "kp", kp)  # the session's preference, as DuckDuckGo keeps it
        page_params = {"q": query, "iax": "images", "ia": "images", "kp": kp}
        driver.get(f"{self.base_url()}{PAGE_PATH}?{urlencode(page_params)}")
        match = VQD_PATTERN.search(driver.page_source)
        if not match:
            if "captcha" in driver.page_source.lower() or "anomaly" in driver.page_source.lower():
                raise EngineBlocked("captcha", "DuckDuckGo showed a challenge page")
            raise EngineError("no_token", "no vqd token on the DuckDuckGo results page")
        emit("page_loaded", {"engine": self.name})
        f_param, unapplied = filter_param(rules)
        report_unapplied(emit, self.name, unapplied)
        has_next = True

        def read_page(offset: int) -> list:
            nonlocal has_next
            params = {
                "o": "json",
                "q": query,
                "vqd": match.group(1),
                "l": "us-en",
                "p": SAFE_SEARCH_P[rules.safe_search],
                "kp": kp,
                "s": str(offset),
                "f": f_param,
            }
            status, body = driver.execute_async_script(FETCH_JSON_JS, f"{JSON_PATH}?{urlencode(params)}")
            if status in BLOCKED_STATUSES:
                raise EngineBlocked("rate_limited", f"DuckDuckGo answered {status}")
            if status != 200:
                raise EngineError("bad_response", f"DuckDuckGo answered {status}")
            try:
                data = json.loads(body)
            except ValueError:
                raise EngineError("bad_response", "DuckDuckGo sent no JSON") from None
            results = data.get("results") if isinstance(data, dict) else None
            results = (
                [item for item in results if isinstance(item, dict)] if isinstance(results, list) else []
            )
            has_next = bool(results) and bool(data.get("next"))
            return results

        def check(tally: Tally) -> None:
            if tally.read and not tally.yielded and tally.unusable >= tally.read:
                raise EngineError("thumbnails_only", "DuckDuckGo offered only thumbnails")

        yield from results_loop(
            engine=self.name,
            wanted=wanted,
            emit=emit,
            read_batch=read_page,
            to_candidate=self._candidate,
            load_more=lambda count: has_next,
            check=check,
        )

    def _candidate(self, item: dict) -> Candidate | None:
        url = item.get("image")
        if not is_http_url(url) or is_thumbnail(url, THUMBNAIL_MARKERS):
            return None
        page = item.get("url")
        return Candidate(
            url=url,
            page_url=page if is_http_url(page) else "",
            caption=caption_clean(item.get("title")),
            width=_dimension(item.get("width")),
            height=_dimension(item.get("height")),
            engine=self.name,
        )


def _dimension(value: object) -> int | None:
    """A width or height the engine claims, or None when it is not a sensible number."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 0 < number < 1_000_000 else None
