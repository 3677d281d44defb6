"""One threaded HTTP server imitating Bing Images, DuckDuckGo Images and Google Images
with the markup and request shapes the real sites use (see shared/design/engines.md),
plus arbitrary pages for the page extractor.

    imitation = SearchImitation("127.0.0.20", image_url=lambda i: f"http://.../img/{i}.jpeg",
                                total=200, batch_latency=0.3, see_more_after=70).start()
    settings.IMAGEDL_BING_URL = imitation.base   # or all of imitation.engine_settings()

In tests, the ``start_imitation`` and ``imitation`` fixtures (tests/fixtures/hosts.py) start
them and point the settings at them.

``mode`` per engine ("ok", "captcha", "consent", "thumbnails", "rate_limited",
"changed") makes that engine misbehave the way the real one does. ``offsets`` per
engine shift its results (result n is image n + offset), so engines overlap in part.
``adult(n)`` marks result n adult: each engine leaves adult results out unless its safe
search says off, and their titles say "(adult)". As on the real sites, the setting
comes from the request or from the browser's cookies, and missing means moderate:
Bing reads ``adlt`` or its ``SRCHHPGUSR`` cookie (``ADLT=STRICT|DEMOTE|OFF``);
DuckDuckGo ``kp`` or its ``kp`` cookie (1, -1, -2), and its JSON also ``p`` (-1: not
filtered); Google ``safe``. The pages' own scroll scripts know only what the page's URL
and the cookies carry: Bing's scroll requests forward ``q`` and ``qft`` from the URL but
not ``adlt`` (what the real Bing was seen to do), Google's forward ``safe`` and ``tbs``.
``served`` records, for every results request, (engine, path, safe search as served:
strict/moderate/off, filters as read).
``thumbnail_url(n)``, when given, is result n's thumbnail, shown as an ``<img>`` on the
results pages as the real sites show theirs (Bing's ``img.mimg`` and ``turl``, Google's
``img`` in each result; DuckDuckGo's JSON ``thumbnail``, which only its page's own
scripts would draw); without it the pages show no images.
``titles(n)`` is result n's title as the engine sends it (Bing's ``t``, DuckDuckGo's
``title``; default "Result n"): real titles carry entities and highlight marks.
``traits(n)`` is what each engine believes of result n, ``{kind: value}`` in
downloader.choices' terms (``{"layout": "wide", "type": "animated", "license": "cc"}``):
when a request carries filters (Bing ``qft``, Google ``tbs``, DuckDuckGo ``f``, read by
tests/imitations/filters.py) only results whose traits match every filter are shown,
and, as on the real sites, nothing in a result states its license (a license filter
only chooses which results are shown).
``asked`` records each engine's filters as read: (engine, {kind: value}).
``robots_txt`` (with ``robots_status``) is served at /robots.txt (None: 404);
``page_headers[path]`` are sent with that page; ``agents`` records (path, User-Agent). Requests are
recorded in ``requests`` as (path, query dict).
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from tests.imitations.filters import bing_filters, ddg_filters, google_filters

PAGE_STYLE = "<style>body{margin:0;font:14px sans-serif} li,.r{height:110px;list-style:none}</style>"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as real servers do (no ~40 ms Nagle/delayed-ACK stall)
    server: _Server

    def log_message(self, *args) -> None:
        pass

    def _send(
        self, status: int, body: str | bytes, ctype: str = "text/html; charset=utf-8", **headers
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        imitation = self.server.imitation
        with imitation.lock:
            imitation.requests.append((parts.path, query))
            imitation.agents.append((parts.path, self.headers.get("User-Agent", "")))
        cookies = _cookies(self.headers.get("Cookie", ""))
        try:
            route = {
                "/images/search": imitation.bing_page,
                "/images/async": imitation.bing_async,
                "/i.js": imitation.ddg_json,
                "/search": imitation.google_page,
                "/sorry/index": lambda q, c: (
                    200,
                    "<html><body>Our systems have detected unusual traffic</body></html>",
                ),
            }.get(parts.path)
            if parts.path == "/" and query.get("ia") == "images":
                route = imitation.ddg_page
            if route is None and parts.path in imitation.redirects:
                return self._send(302, "", Location=imitation.redirects[parts.path])
            if route is None and parts.path == "/robots.txt" and imitation.robots_txt is not None:
                return self._send(imitation.robots_status, imitation.robots_txt, "text/plain")
            if route is None and parts.path in imitation.pages:
                return self._send(
                    200, imitation.pages[parts.path], **imitation.page_headers.get(parts.path, {})
                )
            if route is None:
                return self._send(404, "not found")
            result = route(query, cookies)
            status, body = result[0], result[1]
            headers = result[2] if len(result) > 2 else {}
            ctype = "application/json" if parts.path == "/i.js" else "text/html; charset=utf-8"
            self._send(status, body, ctype, **headers)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _cookies(header: str) -> dict[str, str]:
    """The Cookie header's pairs (values as sent: Bing's hold '=' and '&')."""
    pairs = (part.strip().partition("=") for part in header.split(";") if "=" in part)
    return {name: value for name, _, value in pairs}


BING_ADLT = {"STRICT": "strict", "DEMOTE": "moderate", "OFF": "off"}
DDG_KP = {"1": "strict", "-1": "moderate", "-2": "off"}
GOOGLE_SAFE = {"active": "strict", "off": "off"}  # strict and moderate are both "active"


def bing_level(query: dict, cookies: dict[str, str]) -> str:
    if query.get("adlt") in ("strict", "moderate", "off"):
        return query["adlt"]
    preferences = dict(pair.partition("=")[::2] for pair in cookies.get("SRCHHPGUSR", "").split("&"))
    return BING_ADLT.get(preferences.get("ADLT", ""), "moderate")


def ddg_level(query: dict, cookies: dict[str, str]) -> str:
    level = DDG_KP.get(query.get("kp") or cookies.get("kp", ""), "moderate")
    return "off" if query.get("p") == "-1" else level


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class SearchImitation:
    def __init__(
        self,
        address: str = "127.0.0.1",
        *,
        image_url: Callable[[int], str],
        total: int = 200,
        batch: int = 35,
        batch_latency: float = 0.0,
        see_more_after: int | None = None,
        modes: dict[str, str] | None = None,
        offsets: dict[str, int] | None = None,
        adult: Callable[[int], bool] | None = None,
        traits: Callable[[int], dict[str, str]] | None = None,
        titles: Callable[[int], str] | None = None,
        thumbnail_url: Callable[[int], str] | None = None,
    ) -> None:
        if not address.startswith("127."):
            raise ValueError("imitations live on 127.0.0.0/8 only")
        self.image_url = image_url
        self.total = total
        self.batch = batch
        self.batch_latency = batch_latency
        self.see_more_after = see_more_after
        self.modes = {"bing": "ok", "duckduckgo": "ok", "google": "ok", **(modes or {})}
        # Result n of an engine is image n + its offset: engines that overlap only in part.
        self.offsets = {"bing": 0, "duckduckgo": 0, "google": 0, **(offsets or {})}
        self.adult = adult
        self.traits = traits
        self.titles = titles
        self.thumbnail_url = thumbnail_url
        self.asked: list[tuple[str, dict[str, str]]] = []
        self.served: list[tuple[str, str, str, dict[str, str]]] = []
        self.pages: dict[str, str] = {}
        self.redirects: dict[str, str] = {}  # path -> Location
        self.page_headers: dict[str, dict[str, str]] = {}  # path -> extra headers
        self.robots_txt: str | None = None
        self.robots_status = 200
        self.agents: list[tuple[str, str]] = []
        self.requests: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self._server = _Server((address, 0), _Handler)
        self._server.imitation = self
        self.address, self.port = self._server.server_address[:2]
        # A short poll: stop() returns at once (the default half second adds up over a suite).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base(self) -> str:
        return f"http://{self.address}:{self.port}"

    def start(self) -> SearchImitation:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def engine_settings(self, scroll_wait: float = 2.0) -> dict[str, str | float]:
        """The settings that send Bing, DuckDuckGo and Google here (as Django settings,
        or - each value through str() - as a worker's environment)."""
        urls = {f"IMAGEDL_{name}_URL": self.base for name in ("BING", "DUCKDUCKGO", "GOOGLE")}
        return {**urls, "IMAGEDL_SCROLL_WAIT": scroll_wait}

    def count(self, path: str) -> int:
        with self.lock:
            return sum(1 for p, _ in self.requests if p == path)

    def _visible(self, filtered: bool, asked: dict[str, str] | None = None) -> list[int]:
        """The results an engine shows, in order: all, or all but the adult ones, and of
        those only the ones whose traits match the filters ``asked``."""
        return [
            i
            for i in range(1, self.total + 1)
            if not (filtered and self.adult and self.adult(i)) and self._matches(i, asked)
        ]

    def _matches(self, index: int, asked: dict[str, str] | None) -> bool:
        if not asked or self.traits is None:
            return True
        traits = self.traits(index)
        return all(traits.get(kind) == value for kind, value in asked.items())

    def _serve(self, engine: str, path: str, level: str, asked: dict[str, str]) -> bool:
        """Note a results request as served; True when adult results are left out."""
        with self.lock:
            self.served.append((engine, path, level, asked))
        return level != "off"

    def _note(self, engine: str, asked: dict[str, str]) -> dict[str, str]:
        with self.lock:
            self.asked.append((engine, asked))
        return asked

    def _thumbnail(self, index: int, default: str) -> str:
        return self.thumbnail_url(index) if self.thumbnail_url else default

    def _thumbnail_img(self, index: int, css_class: str = "") -> str:
        """The result's thumbnail as the page shows it (nothing without ``thumbnail_url``)."""
        if not self.thumbnail_url:
            return ""
        src = html.escape(self.thumbnail_url(index))
        return f'<img class="{css_class}" src="{src}" alt="" width="160" height="100">'

    def _title(self, index: int) -> str:
        title = self.titles(index) if self.titles else f"Result {index}"
        return title + (" (adult)" if self.adult and self.adult(index) else "")

    # --- Bing ----------------------------------------------------------------------

    def _bing_items(self, first: int, count: int, filtered: bool = True, asked: dict | None = None) -> str:
        items = []
        for index in self._visible(filtered, asked)[first - 1 : first - 1 + count]:
            meta = {
                "murl": self.image_url(index + self.offsets["bing"]),
                "purl": f"http://example.org/article/{index}",
                "turl": self._thumbnail(index, f"https://tse2.mm.bing.net/th?id=OIP.{index}&pid=Api"),
                "t": self._title(index),
                "desc": "",
            }
            if self.modes["bing"] == "thumbnails":
                meta["murl"] = meta["turl"]
            cls = "iusc-changed" if self.modes["bing"] == "changed" else "iusc"
            items.append(
                f'<li data-idx="{index}"><div class="iuscp"><a class="{cls}" m="{html.escape(json.dumps(meta))}" '
                f'href="/images/search?view=detailV2&amp;id={index}"><div class="img_cont">{self._thumbnail_img(index, "mimg")}result {index}</div></a>'
                f'<div class="img_info"><span class="nowrap">640 x 480 · jpeg</span></div></div></li>'
            )
        return "".join(items)

    def bing_page(self, query: dict, cookies: dict[str, str]):
        if self.modes["bing"] == "captcha":
            return 200, "<html><body><div id='b_captcha'>Please solve the challenge</div></body></html>"
        asked = self._note("bing", bing_filters(query.get("qft", "")))
        filtered = self._serve("bing", "/images/search", bing_level(query, cookies), asked)
        first_batch = self._bing_items(1, self.batch, filtered, asked)
        script = f"""
<script>
(function() {{
  const url = new URLSearchParams(location.search);  // what the page knows: its URL (and cookies)
  const q = url.get('q') || '', qft = url.get('qft') || '';
  let next = {self.batch + 1}, loading = false, seeMoreClicked = false;
  const total = {len(self._visible(filtered, asked))}, seeMoreAfter = {self.see_more_after or 0};
  const button = document.querySelector('.btn_seemore');
  function load() {{
    if (loading || next > total) return;
    if (seeMoreAfter && next > seeMoreAfter && !seeMoreClicked) {{ button.style.display = 'block'; return; }}
    loading = true;
    fetch('/images/async?q=' + encodeURIComponent(q) + '&first=' + next + '&count=35&async=1&qft=' + encodeURIComponent(qft))
      .then(r => r.text()).then(fragment => {{
        const ul = document.createElement('ul');
        ul.className = 'dgControl_list';
        ul.innerHTML = fragment;
        document.getElementById('b_more').appendChild(ul);
        const got = ul.querySelectorAll('li').length;
        next = got ? next + got : total + 1;
        loading = false;
        if (document.body.scrollHeight <= window.innerHeight + window.scrollY + 300) load();
      }});
  }}
  window.addEventListener('scroll', () => {{
    if (window.innerHeight + window.scrollY >= document.body.scrollHeight - 300) load();
  }});
  button.addEventListener('click', () => {{ seeMoreClicked = true; button.style.display = 'none'; load(); }});
}})();
</script>"""
        body = (
            f"<!doctype html><html><head><title>{html.escape(query.get('q', ''))} - Bing images</title>{PAGE_STYLE}"
            f"</head><body><ul class='dgControl_list'>{first_batch}</ul><div id='b_more'></div>"
            f"<a class='btn_seemore' href='#' style='display:none' onclick='return false'>See more images</a>"
            f"{script}</body></html>"
        )
        return 200, body

    def bing_async(self, query: dict, cookies: dict[str, str]):
        if self.batch_latency:
            time.sleep(self.batch_latency)
        first = int(query.get("first", "1"))
        asked = bing_filters(query.get("qft", ""))
        filtered = self._serve("bing", "/images/async", bing_level(query, cookies), asked)
        return 200, self._bing_items(first, int(query.get("count", self.batch)), filtered, asked)

    # --- DuckDuckGo ----------------------------------------------------------------

    def ddg_page(self, query: dict, cookies: dict[str, str]):
        if self.modes["duckduckgo"] == "captcha":
            return (
                200,
                "<html><body>We detected an anomaly in your request. Select all squares with ducks.</body></html>",
            )
        return 200, (
            f"<html><head>{PAGE_STYLE}</head><body><div id='react'></div>"
            f"<script>DDG.deep.initialize('/d.js?q={quote(query.get('q', ''))}&vqd=\"4-3141592653\"');"
            "var vqd='4-3141592653';</script></body></html>"
        )

    def ddg_json(self, query: dict, cookies: dict[str, str]):
        if self.batch_latency:
            time.sleep(self.batch_latency)
        if self.modes["duckduckgo"] == "rate_limited":
            return 403, json.dumps({"error": "forbidden"})
        if query.get("vqd") != "4-3141592653":
            return 403, json.dumps({"error": "bad vqd"})
        offset = int(query.get("s", "0"))
        asked = self._note("duckduckgo", ddg_filters(query.get("f", "")))
        visible = self._visible(self._serve("duckduckgo", "/i.js", ddg_level(query, cookies), asked), asked)
        results = []
        for index in visible[offset : offset + 100]:
            image = self.image_url(index + self.offsets["duckduckgo"])
            if self.modes["duckduckgo"] == "thumbnails":
                image = f"https://external-content.duckduckgo.com/iu/?u={quote(image)}"
            results.append(
                {
                    "image": image,
                    "thumbnail": self._thumbnail(index, f"https://tse1.mm.bing.net/th?id={index}"),
                    "title": self._title(index),
                    "url": f"http://example.org/ddg/{index}",
                    "width": 640,
                    "height": 480,
                }
            )
        body = {"results": results}
        if offset + 100 < len(visible):
            body["next"] = "i.js?" + urlencode({"q": query.get("q", ""), "s": offset + 100})
        return 200, json.dumps(body)

    # --- Google ----------------------------------------------------------------------

    def _google_links(self, start: int, count: int, filtered: bool = True, asked: dict | None = None) -> str:
        links = []
        for index in self._visible(filtered, asked)[start - 1 : start - 1 + count]:
            image = self.image_url(index + self.offsets["google"])
            if self.modes["google"] == "thumbnails":
                image = f"https://encrypted-tbn0.gstatic.com/images?q=tbn:{index}"
            href = "/imgres?" + urlencode({"imgurl": image, "imgrefurl": f"http://example.org/g/{index}"})
            thumbnail = self._thumbnail_img(index)
            links.append(f"<div class='r'><a href='{html.escape(href)}'>{thumbnail}result {index}</a></div>")
        return "".join(links)

    def google_page(self, query: dict, cookies: dict[str, str]):
        mode = self.modes["google"]
        if mode == "captcha":
            return 302, "", {"Location": "/sorry/index?continue=x"}
        if mode == "consent":
            return 200, "<html><body><div id='W0wltc' role='button'>Reject all</div></body></html>"
        level = GOOGLE_SAFE.get(query.get("safe", "active"), "strict")
        tbs = query.get("tbs", "")
        if query.get("async") == "1":
            if self.batch_latency:
                time.sleep(self.batch_latency)
            filtered = self._serve("google", "/search?async", level, google_filters(tbs))
            return 200, self._google_links(int(query.get("start", "1")), 20, filtered, google_filters(tbs))
        asked = self._note("google", google_filters(tbs))
        filtered = self._serve("google", "/search", level, asked)
        script = f"""<script>
const url = new URLSearchParams(location.search);  // what the page knows: its URL (and cookies)
let next = 21, loading = false; const total = {len(self._visible(filtered, asked))};
window.addEventListener('scroll', () => {{
  if (loading || next > total) return;
  if (window.innerHeight + window.scrollY < document.body.scrollHeight - 300) return;
  loading = true;
  fetch('/search?tbm=isch&async=1&safe=' + encodeURIComponent(url.get('safe') || '') + '&tbs=' + encodeURIComponent(url.get('tbs') || '') + '&start=' + next).then(r => r.text()).then(t => {{
    const d = document.createElement('div'); d.innerHTML = t; document.getElementById('more').appendChild(d);
    next += 20; loading = false; }});
}});
</script>"""
        return 200, (
            f"<html><head>{PAGE_STYLE}</head><body><div id='islrg'>{self._google_links(1, 20, filtered, asked)}</div>"
            f"<div id='more'></div>{script}</body></html>"
        )
