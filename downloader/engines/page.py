"""The page extractor: every image a page shows or links to, at its largest.

Asks the site's robots.txt first (through the download chokepoint, read as RFC 9309
says: ``downloader.robots``), loads the page, and leaves it when the publisher
opts out of AI use (``X-Robots-Tag`` or ``<meta name="robots">`` noai / noimageai,
unless the FetchPolicy's ``respect_noai`` is off). Then scrolls until lazy loading stops adding
images and collects the largest candidate of every ``img`` (src, srcset, data-src,
data-srcset, data-original and similar; its caption from its alt text, figure caption or
title, else the page's title), ``picture``
sources, links to image files, and og:image/twitter:image; and what the page states of
their rights (rel=license, schema.org license and creator: ``downloader.rights``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

from downloader.captions import caption_clean, caption_first
from downloader.engines.base import Candidate, EngineError, EventCallback, is_http_url, no_events, wait_until
from downloader.http import (
    OPT_OUT_DIRECTIVES,
    ROBOT_NAME,
    Fetcher,
    FetchPolicy,
    Refused,
    resolve_checked,
    robots_tag_opts_out,
)
from downloader.rights import page_rights
from downloader.robots import ROBOTS_MAX_BYTES, fetch_allows, rules_allow

LAZY_ATTRIBUTES = ("data-src", "data-original", "data-lazy-src", "data-url", "data-hi-res-src", "data-full")
LAZY_SRCSETS = ("data-srcset", "data-lazy-srcset")
IMAGE_LINK = re.compile(r"\.(jpe?g|png|webp|gif|avif|bmp)(\?|#|$)", re.IGNORECASE)
ROBOTS_TIMEOUT = 5.0  # robots.txt: a short wait (its first 500 KiB are read: downloader.robots)
ROBOTS_META_JS = """
return Array.from(document.querySelectorAll('meta[name]'))
  .filter(m => ['robots', arguments[0]].includes(m.getAttribute('name').toLowerCase()))
  .map(m => m.getAttribute('content') || '');
"""

COLLECT_JS = """
const lazy = arguments[0], lazySets = arguments[1];
const imgs = [];
for (const img of document.querySelectorAll('img')) {
  const rec = {src: img.getAttribute('src') || '', current: img.currentSrc || '',
               srcset: img.getAttribute('srcset') || '', width: img.naturalWidth || 0, lazy: [], sets: [],
               alt: (img.getAttribute('alt') || '').slice(0, 4000),
               title: (img.getAttribute('title') || '').slice(0, 4000), figcaption: ''};
  const figure = img.closest('figure'), caption = figure && figure.querySelector('figcaption');
  if (caption) rec.figcaption = (caption.textContent || '').slice(0, 4000);
  for (const a of lazy) { const v = img.getAttribute(a); if (v) rec.lazy.push(v); }
  for (const a of lazySets) { const v = img.getAttribute(a); if (v) rec.sets.push(v); }
  const pic = img.closest('picture');
  if (pic) for (const s of pic.querySelectorAll('source')) {
    const v = s.getAttribute('srcset') || s.getAttribute('data-srcset'); if (v) rec.sets.push(v);
  }
  imgs.push(rec);
}
const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'));
const metas = Array.from(document.querySelectorAll(
  "meta[property='og:image'], meta[property='og:image:url'], " +
  "meta[name='twitter:image'], meta[property='twitter:image']"
)).map(m => m.getAttribute('content'));
// What the page states of rights: rel=license links, JSON-LD, schema.org microdata.
const licenseLinks = Array.from(
  document.querySelectorAll('a[rel~="license"][href], link[rel~="license"][href]')
).slice(0, 5).map(a => a.getAttribute('href'));
const jsonLd = Array.from(document.querySelectorAll('script[type="application/ld+json"]'))
  .slice(0, 20).map(s => (s.textContent || '').slice(0, 200000));
const microdata = {};
for (const name of ['license', 'creator']) {
  const e = document.querySelector('[itemprop="' + name + '"]');
  const v = e && (e.getAttribute('href') || e.getAttribute('content') || e.textContent || '');
  if (v) microdata[name] = v.slice(0, 2000);
}
return {base: document.baseURI, title: (document.title || '').slice(0, 4000), imgs: imgs, links: links,
        metas: metas, license_links: licenseLinks, json_ld: jsonLd, microdata: microdata};
"""


@dataclass(frozen=True)
class PageOptions:
    """How a user's page is read: the download chokepoint's policy (its address rules
    for the page and robots.txt, its user agent, ``respect_noai``) and how long to wait
    for lazy images after a scroll (``downloader.config.page_options_from_settings``)."""

    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    scroll_wait: float = 6.0


def largest_from_srcset(srcset: str) -> tuple[str, float] | None:
    """The candidate with the largest width (``w``) or density (``x``) descriptor."""
    best: tuple[str, float] | None = None
    for part in re.split(r",\s+(?=\S)", srcset.strip()):
        pieces = part.strip().split()
        if not pieces:
            continue
        url, score = pieces[0].rstrip(","), 1.0
        if len(pieces) > 1:
            descriptor = pieces[1].lower()
            try:
                if descriptor.endswith("w"):
                    score = float(descriptor[:-1])
                elif descriptor.endswith("x"):
                    score = float(descriptor[:-1]) * 1000  # 2x beats any unknown width
            except ValueError:
                score = 1.0
        if best is None or score > best[1]:
            best = (url, score)
    return best


def pick_urls(collected: dict) -> list[str]:
    """Absolute http(s) URLs, one per image element (its largest), then links and metas."""
    return [url for url, _ in pick_images(collected)]


def image_caption(img: dict, page_title: str) -> str:
    """An ``img``'s caption: its alt text, else its figure's caption, else its title
    attribute, else the page's title (downloader.captions)."""
    return caption_first(img.get("alt"), img.get("figcaption"), img.get("title"), page_title)


def pick_images(collected: dict) -> list[tuple[str, str]]:
    """``pick_urls`` with each image's caption (``image_caption``; for links and metas
    the page's title)."""
    base = collected.get("base") or ""
    page_title = caption_clean(collected.get("title"))
    found: dict[str, str] = {}

    def add(url: str | None, caption: str = page_title) -> None:
        if not url or url.startswith("data:"):
            return
        absolute = urljoin(base, url.strip())
        if is_http_url(absolute) and absolute not in found:
            found[absolute] = caption

    for meta in collected.get("metas", []):
        add(meta)
    for img in collected.get("imgs", []):
        choices = [largest_from_srcset(s) for s in [img.get("srcset", ""), *img.get("sets", [])] if s]
        choices = [c for c in choices if c]
        caption = image_caption(img, page_title)
        if choices:
            add(max(choices, key=lambda c: c[1])[0], caption)
        elif img.get("lazy"):
            add(img["lazy"][0], caption)
        else:
            add(img.get("current") or img.get("src"), caption)
    for href in collected.get("links", []):
        if href and IMAGE_LINK.search(urlsplit(href).path or href):
            add(href)
    return list(found.items())


def robots_allows(page_url: str, policy: FetchPolicy | None = None) -> bool:
    """What the site's robots.txt says about imagedl reading ``page_url``, fetched
    through the chokepoint (``policy``'s address rules and user agent, a short timeout,
    its first 500 KiB, no retries) and read as RFC 9309 says (``downloader.robots``): a
    4xx allows all, a 5xx, a 429 or no answer disallows all."""
    parts = urlsplit(page_url)
    robots_url = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], "/robots.txt", "", ""))
    policy = dataclasses.replace(
        policy or FetchPolicy(),
        connect_timeout=ROBOTS_TIMEOUT,
        read_timeout=ROBOTS_TIMEOUT,
        total_timeout=ROBOTS_TIMEOUT,
        max_bytes=ROBOTS_MAX_BYTES,
        keep_prefix=True,
        max_retries=0,
        respect_noai=False,
        accept="text/plain,*/*;q=0.1",
    )
    fetcher = Fetcher(policy, concurrency=1, per_host=1)
    try:
        with tempfile.TemporaryDirectory(prefix="imagedl-robots-") as folder:
            target = Path(folder) / "robots.txt"
            fetched = fetcher.fetch(robots_url, target)
            if not fetched.ok:
                return fetch_allows(fetched.reason, fetched.status)
            text = target.read_bytes().decode("utf-8", errors="replace")
    finally:
        fetcher.close()
    return rules_allow(text, page_url, ROBOT_NAME)


def page_robots_tags(driver, url: str) -> list[str] | None:
    """The ``X-Robots-Tag`` values the page at ``url`` was served with, from the
    browser's network log (``open_browser(for_pages=True)``); None without a log."""
    try:
        entries = driver.get_log("performance")
    except Exception:  # a browser opened without the log
        return None
    wanted = url.partition("#")[0]
    values: list[str] = []
    for entry in entries:
        try:
            message = json.loads(entry["message"])["message"]
        except (KeyError, TypeError, ValueError):
            continue
        params = message.get("params") or {}
        response = params.get("response") or {}
        if (
            message.get("method") == "Network.responseReceived"
            and params.get("type") == "Document"
            and response.get("url", "").partition("#")[0] == wanted
        ):
            values = [  # the last answer for the page counts (a reload answers again)
                line
                for name, value in (response.get("headers") or {}).items()
                if name.lower() == "x-robots-tag"
                for line in str(value).split("\n")
            ]
    return values


def meta_opts_out(contents: list[str]) -> bool:
    """True when ``<meta name="robots">`` (or ``name="imagedl"``) contents say noai or noimageai."""
    return any(token.strip().lower() in OPT_OUT_DIRECTIVES for text in contents for token in text.split(","))


def _check_robots(url: str, policy: FetchPolicy) -> None:
    if not robots_allows(url, policy):
        raise EngineError(
            "robots_disallowed", "the site's robots.txt asks robots like ours not to read that page"
        )


def _check_public(url: str, what: str, policy: FetchPolicy) -> None:
    """The download chokepoint's address rules, applied to the pages the browser opens."""
    try:
        resolve_checked(url, policy)
    except Refused as exc:
        detail = "is not public" if exc.reason == "private_address" else f"cannot be used ({exc.reason})"
        raise EngineError(exc.reason, f"{what} {detail}") from None


def _open_page(driver, page_url: str, policy: FetchPolicy) -> None:
    """Load the page once its address and robots.txt allow it (and where it landed,
    after redirects); EngineError when they do not, or its publisher opts out."""
    if not is_http_url(page_url):
        raise EngineError("bad_url", "only http and https pages can be read")
    # The form checked the address at submission; DNS may answer otherwise by now.
    _check_public(page_url, "the page's address", policy)
    _check_robots(page_url, policy)
    driver.get(page_url)
    landed = driver.current_url
    if landed != page_url and is_http_url(landed):
        _check_public(landed, "the page redirected to an address that", policy)  # nothing is read from it
        _check_robots(landed, policy)
    if policy.respect_noai and (
        robots_tag_opts_out(page_robots_tags(driver, landed) or [])
        or meta_opts_out(driver.execute_script(ROBOTS_META_JS, ROBOT_NAME) or [])
    ):
        raise EngineError("publisher_opt_out", "the page's publisher asks not to be used for AI (noai)")


def _scroll_to_end(driver, wait: float) -> None:
    """Scroll until lazy loaders stop adding images (at most 30 times)."""
    count_js = "return document.querySelectorAll('img').length + document.body.scrollHeight;"
    for _ in range(30):
        before = driver.execute_script(count_js)
        driver.execute_script("window.scrollTo(0, document.body.scrollHeight);")
        if not wait_until(lambda b=before: driver.execute_script(count_js) != b, min(wait, 2.0)):
            break


def extract_page_images(
    driver,
    page_url: str,
    *,
    wanted: int,
    on_event: EventCallback | None = None,
    options: PageOptions | None = None,
) -> Iterator[Candidate]:
    """Up to ``wanted`` candidates from the page at ``page_url``, each image at its
    largest, in page order."""
    options = options or PageOptions()
    emit = on_event or no_events
    _open_page(driver, page_url, options.fetch)
    emit("page_loaded", {"engine": "page"})
    _scroll_to_end(driver, options.scroll_wait)
    collected = driver.execute_script(COLLECT_JS, list(LAZY_ATTRIBUTES), list(LAZY_SRCSETS))
    images = pick_images(collected)
    rights = page_rights(collected, str(collected.get("base") or page_url))
    emit("results_end", {"engine": "page", "found": len(images)})
    for rank, (url, caption) in enumerate(images[:wanted], 1):
        stated = rights.of(url)
        yield Candidate(
            url=url,
            page_url=page_url,
            caption=caption,
            engine="page",
            rank=rank,
            license=stated.license,
            creator=stated.creator,
        )
