"""Chromium's CPU per search: Bing searches in the kept search browser, each in a fresh
browser context, against the Bing imitation on loopback (no Django, no Cassandra).

Prints the browser's start and, per search (context opened, results page, scrolls until
--wanted results, context disposed, then --settle seconds for the ended renderers to be
reaped), the CPU seconds (user+sys) of chromedriver and every Chromium process, from
/proc: the live processes under this one and what their reaped children used. The
image hosts and the imitation run as threads of this process and are not counted.

    .venv/bin/python -m bench.search_cpu [--searches 6] [--wanted 60] [--batch-latency 0.3]
        [--thumbnails [--load-images]] [--chrome-flag=--some-switch ...]

``--thumbnails``: the results pages show a thumbnail per result (as the real Bing does),
from an image host that counts them; ``--load-images`` lets the search browser load
them (as it did before it was told not to), to compare; ``--chrome-flag``: an extra Chromium switch for the
run (repeatable), to try one. Run as a file with ``PYTHONPATH`` set to another checkout,
it measures that checkout's browser (``--thumbnails`` needs the imitation's thumbnails).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def browser_cpu() -> float:
    """CPU seconds of this process's descendants, live ones and reaped ones."""
    parents, used = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    found, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        found |= frontier
    own = os.times()
    return sum(used[pid] for pid in found) / TICK + own.children_user + own.children_system


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--searches", type=int, default=6)
    parser.add_argument("--wanted", type=int, default=60, help="results per search (35 a page)")
    parser.add_argument("--batch-latency", type=float, default=0.3)
    parser.add_argument("--thumbnails", action="store_true")
    parser.add_argument("--load-images", action="store_true", help="the search browser loads images")
    parser.add_argument("--settle", type=float, default=0.7)
    parser.add_argument("--chrome-flag", action="append", default=[])
    args = parser.parse_args()

    from downloader import browser
    from downloader.browser import BrowserOptions
    from downloader.browsers import KEEPER
    from downloader.engines.base import EngineOptions, SearchRules
    from downloader.engines.bing import BingEngine
    from tests.imagehosts import ImageHost
    from tests.imitations import SearchImitation

    browser.CHROME_FLAGS = (*browser.CHROME_FLAGS, *args.chrome_flag)
    if args.load_images:
        browser.NO_IMAGES_BLINK_SETTINGS = "--blink-settings=imagesEnabled=true"
    host = ImageHost("127.0.0.91").start()
    thumbnails = ImageHost("127.0.0.92").start()
    shown = (
        {"thumbnail_url": lambda i: thumbnails.url(f"/img/{i}.jpeg?w=230&h=170")} if args.thumbnails else {}
    )
    imitation = SearchImitation(
        "127.0.0.90",
        image_url=lambda i: host.url(f"/img/{i}.jpeg?w=600&h=400"),
        total=args.wanted * 2 + 100,
        batch_latency=args.batch_latency,
        **shown,  # (without: it runs on a checkout from before thumbnails too, for a before/after)
    ).start()
    options = BrowserOptions(loopback_only=True)
    bing = BingEngine(EngineOptions(urls={"bing": imitation.base}, scroll_wait=6.0))
    try:
        before = browser_cpu()
        with KEEPER.lend(options):
            pass
        start = browser_cpu() - before
        time.sleep(args.settle)
        per_search, walls = [], []
        for _ in range(args.searches):
            before, began = browser_cpu(), time.monotonic()
            with KEEPER.lend(options) as driver:
                found = list(bing.search(driver, "red fox", wanted=args.wanted, rules=SearchRules()))
            walls.append(time.monotonic() - began)
            time.sleep(args.settle)
            per_search.append(browser_cpu() - before)
            assert len(found) == args.wanted, len(found)
    finally:
        KEEPER.close()
        imitation.stop()
        host.stop()
        thumbnails.stop()
    print(
        f"{' '.join(args.chrome_flag) or 'the search browser as configured'}; {args.wanted} results a search, "
        f"batches at {args.batch_latency * 1000:.0f} ms{', thumbnails shown' if args.thumbnails else ''}"
        f"{', images loaded' if args.load_images else ''}"
    )
    print(f"browser start      {start:.3f} CPU-s")
    print(f"per search         {_spread(per_search)} CPU-s, wall {_spread(walls)} s  (median, min-max)")
    print(f"thumbnails asked   {sum(thumbnails.hits.values())}")


if __name__ == "__main__":
    main()
