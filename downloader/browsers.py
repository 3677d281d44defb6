"""One browser per process for search engines' pages, a fresh browser context per search.

Starting Chromium costs a second or more of wall time and of CPU. ``search_browser``
lends the browser ``KEEPER`` keeps in this process; each search gets a browser context
of its own (DevTools ``Target.createBrowserContext``: in memory, like an incognito
window, with its own cookies, storage, cache, history and renderer processes) and its
tab in it, and the context is disposed at the search's end, so no search sees anything
of the one before. A search browser loads no images: every engine reads full-size URLs
from the results' markup or JSON, never from a loaded thumbnail.

The browser is quit, and the next search starts a new one (a new profile folder, the
same sandbox: ``downloader.browser``), after ``BrowserOptions.max_uses`` searches,
after any error in a search (an exception, an engine's failure, a window left behind,
a source still running), when the options change, when the thread that started it
has ended (the kernel ends chromedriver with it), and at the process's end (``atexit``,
and the exit of a ``multiprocessing`` worker, which skips ``atexit``). One search at a
time: a search that finds the kept browser busy gets a browser of its own, as does every
search with ``max_uses`` 1. Browsers for strangers' pages are never kept (``gather``).
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import itertools
import json
import multiprocessing.util
import os
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

from downloader.browser import Browser, BrowserOptions, BrowserStartFailed, browser_start, open_browser

DEVTOOLS_TIMEOUT = 15.0


class DevToolsError(RuntimeError):
    """The browser's DevTools endpoint refused a command or could not be reached."""


class DevTools:
    """The browser's own DevTools endpoint. Chromedriver forwards commands to a page's
    session, which refuses browser-wide ones (``Target.createBrowserContext``); this
    is a connection to the browser target, on the loopback port chromedriver opened."""

    def __init__(self, driver, timeout: float = DEVTOOLS_TIMEOUT) -> None:
        import websocket

        host, _, port = driver.capabilities["goog:chromeOptions"]["debuggerAddress"].rpartition(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
        try:
            connection.request("GET", "/json/version")
            url = json.loads(connection.getresponse().read())["webSocketDebuggerUrl"]
        finally:
            connection.close()
        # No Origin header: DevTools rejects the ones it was not told to allow.
        self._socket = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def command(self, method: str, **params: object) -> dict:
        """Send one command and return its result (events, never asked for, are skipped)."""
        with self._lock:
            number = next(self._numbers)
            self._socket.send(json.dumps({"id": number, "method": method, "params": params}))
            while (message := json.loads(self._socket.recv())).get("id") != number:
                pass
        if "error" in message:
            raise DevToolsError(f"{method}: {message['error'].get('message', 'error')}")
        return message.get("result", {})

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._socket.close()


@dataclass(eq=False)
class KeptBrowser:
    """A browser kept across searches, with what decides whether it may serve another."""

    browser: Browser
    devtools: DevTools
    options: BrowserOptions
    home: str  # the window of the default context, open between searches
    pid: int = field(default_factory=os.getpid)
    thread: threading.Thread = field(default_factory=threading.current_thread)
    uses: int = 0
    spoiled: bool = False

    @property
    def driver(self):
        return self.browser.driver

    def serves(self, options: BrowserOptions) -> bool:
        """May this browser serve a search under ``options``?"""
        return (
            not self.spoiled
            and options == self.options
            and self.uses < options.max_uses
            and self.pid == os.getpid()
            and self.thread.is_alive()  # chromedriver dies with the thread that started it
        )

    def quit(self) -> None:
        _kept_of.pop(self.driver, None)
        self.devtools.close()
        self.browser.quit()


# The kept browser of a driver, for ``browser_spoil`` and ``window_open``.
_kept_of: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def browser_spoil(driver) -> None:
    """Do not lend ``driver``'s browser again: quit it after this search (an engine
    failed in it, or something may still be using it). No-op for a browser not kept."""
    kept = _kept_of.get(driver)
    if kept is not None:
        kept.spoiled = True


def window_open(driver) -> None:
    """Open a window beside the current one, in the same browser context (a kept
    browser's search stays in its own context), and switch to it."""
    kept = _kept_of.get(driver)
    if kept is None:
        driver.switch_to.new_window("window")
        return
    context = driver.execute_cdp_cmd("Target.getTargetInfo", {})["targetInfo"]["browserContextId"]
    target = kept.devtools.command("Target.createTarget", url="about:blank", browserContextId=context)
    driver.switch_to.window(target["targetId"])


def _kept_start(options: BrowserOptions) -> KeptBrowser:
    browser = browser_start(options, images=False)
    try:
        kept = KeptBrowser(browser, DevTools(browser.driver), options, browser.driver.current_window_handle)
    except Exception as exc:
        browser.quit()
        raise BrowserStartFailed(f"no DevTools connection to the browser: {type(exc).__name__}") from exc
    _kept_of[browser.driver] = kept
    return kept


def _context_open(kept: KeptBrowser) -> str:
    """A new browser context with one tab, the driver switched to it; its id."""
    context = kept.devtools.command("Target.createBrowserContext", disposeOnDetach=True)["browserContextId"]
    target = kept.devtools.command("Target.createTarget", url="about:blank", browserContextId=context)
    kept.driver.switch_to.window(target["targetId"])
    return context


def _context_close(kept: KeptBrowser, context: str) -> bool:
    """Dispose of the search's context (its windows with it); True when the browser is
    back to its one window, ready for another search."""
    try:
        kept.driver.switch_to.window(kept.home)
        kept.devtools.command("Target.disposeBrowserContext", browserContextId=context)
        return kept.driver.window_handles == [kept.home]
    except Exception:
        return False


class BrowserKeeper:
    """Keeps one browser for searches; lends it to one search at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: KeptBrowser | None = None
        self._hooked_pid = 0
        _keepers.add(self)

    @property
    def kept(self) -> KeptBrowser | None:
        return self._kept

    @contextlib.contextmanager
    def lend(self, options: BrowserOptions) -> Iterator:
        """A WebDriver on a fresh browser context of the kept browser (a browser of
        its own when reuse is off or the kept one is busy)."""
        if options.max_uses <= 1 or not self._lock.acquire(blocking=False):
            with open_browser(options, images=False) as driver:
                yield driver
            return
        try:
            yield from self._lend(options)
        finally:
            self._lock.release()

    def _lend(self, options: BrowserOptions) -> Iterator:
        kept, context = self._ready(options)
        kept.uses += 1
        clean = False
        try:
            yield kept.driver
            clean = not kept.spoiled
        finally:
            # Any error in the search (its exception passes through here) quits the browser.
            if not (clean and _context_close(kept, context)) or kept.uses >= options.max_uses:
                self._discard()

    def _ready(self, options: BrowserOptions) -> tuple[KeptBrowser, str]:
        """The kept browser (a new one if it may not serve) and a fresh context in it.
        A browser that cannot open a context is replaced once; a start's own errors
        (``BrowserUnavailable``, ``BrowserStartFailed``) pass as they are."""
        error: Exception | None = None
        for _ in range(2):
            if self._kept is None or not self._kept.serves(options):
                self._discard()
                self._kept = _kept_start(options)
                self._hook_exit()
            try:
                return self._kept, _context_open(self._kept)
            except Exception as exc:
                self._discard()
                error = exc
        raise BrowserStartFailed(f"no browser context: {type(error).__name__}") from error

    def _discard(self) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            kept.quit()

    def close(self) -> None:
        """Quit the kept browser (at the process's end): waits a little for a search."""
        locked = self._lock.acquire(timeout=5)
        try:
            self._discard()
        finally:
            if locked:
                self._lock.release()

    def _hook_exit(self) -> None:
        """Quit the browser when this process ends: ``atexit``, and a ``multiprocessing``
        child's exit (django-q2's workers), which runs its finalizers but not ``atexit``."""
        if self._hooked_pid == os.getpid():
            return
        self._hooked_pid = os.getpid()
        atexit.register(self.close)
        multiprocessing.util.Finalize(None, self.close, exitpriority=10)

    def _forget(self) -> None:
        """In a forked child: the parent's browser is the parent's (never quit here)."""
        self._lock = threading.Lock()
        self._kept = None


_keepers: weakref.WeakSet[BrowserKeeper] = weakref.WeakSet()


def _keepers_forget() -> None:
    for keeper in list(_keepers):
        keeper._forget()


os.register_at_fork(after_in_child=_keepers_forget)
KEEPER = BrowserKeeper()


@contextlib.contextmanager
def search_browser(options: BrowserOptions | None = None) -> Iterator:
    """A WebDriver for reading search engines' pages, on a fresh browser context of
    this process's kept browser (see the module's text)."""
    with KEEPER.lend(options or BrowserOptions()) as driver:
        yield driver
