"""DuckDuckGo Images: a vqd token from the results page, then its JSON result pages.

Every locator and URL shape of DuckDuckGo is in this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlencode

from django.conf import settings

from downloader.engines.base import (
    Candidate,
    Engine,
    EngineBlocked,
    EngineError,
    EventCallback,
    SearchRules,
    is_http_url,
)

PAGE_PATH = "/"
JSON_PATH = "/i.js"
VQD_PATTERN = re.compile(r"vqd=['\"]?([\d-]+)")
THUMBNAIL_MARKERS = ("external-content.duckduckgo.com", "/iu/?u=", "tse1.mm.bing.net", "tse2.mm.bing.net")
BLOCKED_STATUSES = (202, 403, 418, 429)

FETCH_JSON_JS = """
const done = arguments[arguments.length - 1];
fetch(arguments[0], {credentials: 'same-origin'})
  .then(r => r.text().then(t => done([r.status, t])))
  .catch(e => done([0, String(e)]));
"""


def is_thumbnail(url: str) -> bool:
    return any(marker in url for marker in THUMBNAIL_MARKERS)


class DuckDuckGoEngine(Engine):
    name = "duckduckgo"

    def base_url(self) -> str:
        return settings.IMAGEDL_DUCKDUCKGO_URL

    def search(
        self, driver, query: str, *, wanted: int, rules: SearchRules, on_event: EventCallback | None = None
    ) -> Iterator[Candidate]:
        import json

        emit = on_event or (lambda kind, data: None)
        driver.get(f"{self.base_url()}{PAGE_PATH}?{urlencode({'q': query, 'iax': 'images', 'ia': 'images'})}")
        match = VQD_PATTERN.search(driver.page_source)
        if not match:
            if "captcha" in driver.page_source.lower() or "anomaly" in driver.page_source.lower():
                raise EngineBlocked("captcha", "DuckDuckGo showed a challenge page")
            raise EngineError("no_token", "no vqd token on the DuckDuckGo results page")
        emit("page_loaded", {"engine": self.name})
        size = "Large" if (rules.min_width >= 1000 or rules.min_height >= 1000) else ""
        kind = rules.formats.copy().pop() if len(rules.formats) == 1 else ""
        offset, yielded, pages, thumbnails_only = 0, 0, 0, 0
        seen: set[str] = set()
        while yielded < wanted:
            params = {
                "o": "json",
                "q": query,
                "vqd": match.group(1),
                "l": "us-en",
                "p": "1",
                "s": str(offset),
                "f": f"size:{size},type:{kind},layout:,color:,license:",
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
            results = data.get("results") or []
            pages += 1
            for item in results:
                url = item.get("image")
                if not is_http_url(url) or is_thumbnail(url):
                    thumbnails_only += 1
                    continue
                if url in seen:
                    continue
                seen.add(url)
                yielded += 1
                yield Candidate(
                    url=url,
                    page_url=item.get("url") or "",
                    title=str(item.get("title") or "")[:200],
                    width=item.get("width"),
                    height=item.get("height"),
                    engine=self.name,
                )
                if yielded >= wanted:
                    return
            if results and yielded == 0 and thumbnails_only >= len(results):
                raise EngineError("thumbnails_only", "DuckDuckGo offered only thumbnails")
            emit("scrolled", {"engine": self.name, "pages": pages, "found": yielded})
            if not results or not data.get("next"):
                emit("results_end", {"engine": self.name, "found": yielded})
                return
            offset += len(results)
