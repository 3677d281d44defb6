"""A worker process keeps one Chromium for its searches: each search in a fresh browser
context that sees nothing of the searches before, the browser replaced after an error
and after ``max_uses`` searches, and none left behind when the process ends."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from downloader.browsers import BrowserKeeper, browser_spoil
from downloader.config import browser_options_from_settings, gather_options_from_settings
from downloader.gather import Request, gather
from tests.paths import REPO
from tests.processes import BrowserTrail, descendants, name_of, parent_of, running
from tests.waiting import wait_for

pytestmark = pytest.mark.browser

MARK = """<!doctype html><html><head><script src="/cached.js"></script></head><body><script>
document.cookie = "visitor=first-search; path=/; max-age=3600";
localStorage.setItem("visitor", "first-search");
sessionStorage.setItem("visitor", "first-search");
</script></body></html>"""
LOOK = """<!doctype html><html><head><script src="/cached.js"></script></head><body></body></html>"""
SEEN = "return [document.cookie, localStorage.getItem('visitor'), sessionStorage.getItem('visitor'), history.length]"


def chromium_pid(driver) -> int:
    """The browser process (not a renderer or a helper): chromedriver's child."""
    chromedriver = driver.service.process.pid
    (pid,) = [
        p for p in descendants(chromedriver) if parent_of(p) == chromedriver and name_of(p) == "chromium"
    ]
    return pid


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture
def keeper():
    kept = BrowserKeeper()
    yield kept
    kept.close()


@pytest.fixture
def site(start_imitation):
    site = start_imitation()
    site.pages.update({"/mark": MARK, "/look": LOOK, "/cached.js": "var cached = 1;"})
    site.page_headers["/cached.js"] = {"Cache-Control": "max-age=3600", "Content-Type": "text/javascript"}
    return site


def test_two_searches_share_one_chromium_and_the_second_sees_nothing_of_the_first(keeper, site):
    options = browser_options_from_settings()
    with keeper.lend(options) as driver:
        first = chromium_pid(driver)
        driver.get(site.base + "/mark")
        driver.get(site.base + "/look")
        # Within one search the marks hold, and the script came from the cache.
        assert driver.execute_script(SEEN) == ["visitor=first-search", "first-search", "first-search", 3]
        assert site.count("/cached.js") == 1
    with keeper.lend(options) as driver:
        assert chromium_pid(driver) == first
        driver.get(site.base + "/look")
        assert driver.execute_script(SEEN) == ["", None, None, 2]  # about:blank and this page
        assert driver.get_cookies() == []
    assert site.count("/cached.js") == 2  # the second context has a cache of its own


def test_an_error_in_a_search_quits_its_browser_and_the_next_gets_a_new_one(keeper, site):
    options = browser_options_from_settings()
    with pytest.raises(RuntimeError), keeper.lend(options) as driver:
        failed, failed_driver = chromium_pid(driver), driver.service.process.pid
        raise RuntimeError("a search failed")
    assert not running(failed) and not running(failed_driver)
    with keeper.lend(options) as driver:
        spoiled = chromium_pid(driver)
        assert spoiled != failed
        browser_spoil(driver)  # an engine failed in it (gather spoils it on engine_failed)
    assert wait_for(lambda: not running(spoiled), timeout=10)
    with keeper.lend(options) as driver:
        assert chromium_pid(driver) not in (failed, spoiled)
        driver.get(site.base + "/look")


def test_a_browser_serves_max_uses_searches_then_a_new_one_starts(keeper):
    options = dataclasses.replace(browser_options_from_settings(), max_uses=2)
    pids = []
    for _ in range(3):
        with keeper.lend(options) as driver:
            pids.append(chromium_pid(driver))
    assert pids[0] == pids[1] != pids[2]
    assert not running(pids[0])
    # One use: a browser of its own for each search, quit after it.
    with keeper.lend(dataclasses.replace(options, max_uses=1)) as driver:
        own = chromium_pid(driver)
        assert own != pids[2]
    assert not running(own) and running(pids[2])


def test_searches_through_gather_share_the_kept_browser(tmp_path, imitation):
    from downloader.browsers import KEEPER

    seen = []
    options = gather_options_from_settings()
    try:
        for number in (1, 2):
            events = []
            result = gather(
                Request(wanted=5, query=f"fox {number}", engine="all"),
                tmp_path / str(number),
                on_event=lambda kind, message, data, events=events: events.append(kind),
                options=options,
            )
            assert len(result.kept) == 5 and "engine_failed" not in events
            seen.append((KEEPER.kept.driver.service.process.pid, KEEPER.kept.uses))
        # The second search reused the first's browser, with every engine's window gone.
        assert seen[0][0] == seen[1][0] and [uses for _, uses in seen] == [1, 2]
        assert KEEPER.kept.driver.window_handles == [KEEPER.kept.home]
    finally:
        KEEPER.close()


ENDS = """
import multiprocessing, os, sys, time
sys.path.insert(0, {repo!r})
from downloader.browser import BrowserOptions
from downloader.browsers import KEEPER

def search():
    with KEEPER.lend(BrowserOptions(loopback_only=True, user={user!r})) as driver:
        driver.get("about:blank")
        print("searched", flush=True)
        while not os.path.exists({go!r}):  # the test has seen the browser
            time.sleep(0.05)

if __name__ == "__main__":
    if sys.argv[1] == "worker":  # a django-q2 worker: a forked child that skips atexit
        child = multiprocessing.get_context("fork").Process(target=search)
        child.start()
        child.join()
    else:
        search()
"""


@pytest.mark.parametrize("where", ["process", "worker"])
def test_no_browser_and_no_profile_is_left_when_the_process_ends(settings, tmp_path, where):
    script = tmp_path / "ends.py"
    go = tmp_path / "go"
    script.write_text(ENDS.format(repo=str(REPO), user=settings.IMAGEDL_BROWSER_USER, go=str(go)))
    proc = subprocess.Popen([sys.executable, str(script), where], stdout=subprocess.PIPE, text=True)
    try:
        trail = BrowserTrail(proc.pid)
        assert proc.stdout.readline().strip() == "searched"
        assert wait_for(lambda: [p for p in trail.running() if name_of(p) == "chromium"], timeout=10)
        profiles = {
            arg.split("=", 1)[1]
            for pid in trail.running()
            for arg in _cmdline(pid).split()
            if arg.startswith("--user-data-dir=")
        }
        assert len(profiles) == 1 and all(Path(p).exists() for p in profiles)
        go.touch()
        assert proc.wait(30) == 0
        assert wait_for(lambda: not trail.running(), timeout=15), trail.running()
        assert not any(Path(p).exists() for p in profiles)  # quit, not merely killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_an_engine_that_fails_in_a_search_spoils_the_kept_browser(tmp_path, imitation):
    from downloader.browsers import KEEPER

    imitation.modes["bing"] = "captcha"  # Bing fails, DuckDuckGo takes over: the search succeeds
    events = []
    result = gather(
        Request(wanted=5, query="fox"),
        tmp_path,
        on_event=lambda kind, message, data: events.append(kind),
        options=gather_options_from_settings(),
    )
    assert len(result.kept) == 5 and "engine_failed" in events
    assert KEEPER.kept is None  # quit at the search's end, not lent again


def test_a_second_search_at_the_same_time_gets_a_browser_of_its_own(keeper):
    import threading

    options = browser_options_from_settings()
    inside, leave, seen = threading.Event(), threading.Event(), {}

    def other() -> None:
        with keeper.lend(options) as driver:
            seen["other"] = chromium_pid(driver)
            inside.set()
            leave.wait(30)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert inside.wait(60)
        with keeper.lend(options) as driver:
            seen["own"] = chromium_pid(driver)
        assert seen["own"] != seen["other"] and not running(seen["own"])
        assert running(seen["other"])  # the kept one, still lent to the first search
    finally:
        leave.set()
        thread.join()


def test_a_browser_whose_starting_thread_ended_is_not_lent_again(keeper):
    """The kernel ends chromedriver with the thread that started it (--pdeathsig)."""
    import threading

    options = browser_options_from_settings()
    seen = {}

    def search() -> None:
        with keeper.lend(options) as driver:
            seen["first"] = driver.service.process.pid

    thread = threading.Thread(target=search)
    thread.start()
    thread.join()
    with keeper.lend(options) as driver:
        assert driver.service.process.pid != seen["first"]
        driver.get("about:blank")
