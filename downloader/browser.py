"""The one way to get a browser: headless Debian Chromium through Selenium.

Debian's chromium and chromedriver when present, configured paths otherwise, and
webdriver-manager only when ``BrowserOptions.allow_driver_download`` is on. Every browser
started gets a fresh profile folder, and is always quit (``open_browser``; a browser kept
across searches is ``downloader.browsers``'s).
Chromium and chromedriver run with Chromium's sandbox on, as an unprivileged user,
with an allow-listed environment (``downloader.sandbox``). The search browser
(``downloader.browsers``) loads no images (``images=False``: the engines read full-size
URLs from markup and JSON); every other browser does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from downloader import sandbox
from downloader.http import DEFAULT_USER_AGENT

if TYPE_CHECKING:
    from downloader.egress import EgressGuard

os.environ.setdefault("SE_OFFLINE", "true")  # no Selenium Manager downloads
os.environ.setdefault("SE_AVOID_STATS", "true")

# Chromium features no search or page read needs (see CHROME_FLAGS): the address bar's
# popups, the spare renderer Chromium starts ahead for a next navigation that a
# search's browser context (one page, then disposed of) never makes, and two calls
# home that --disable-background-networking leaves on: Google's network time
# (clients2.google.com, at start) and optimization hints (optimizationguide-pa.googleapis.com).
DISABLED_FEATURES = (
    "WebUIOmniboxPopup",
    "WebUIOmniboxAimPopup",
    "SpareRendererForSitePerProcess",
    "NetworkTimeServiceQuerying",
    "OptimizationHints",
)
# Where Chromium's own Google services are sent instead (the discard port on loopback:
# nothing answers): its account check (ListAccounts on accounts.google.com, made at
# every start though no one signs in) and its component updater (update.googleapis.com,
# which asks at start even with --disable-component-update).
NOWHERE = "http://127.0.0.1:9/"
CHROME_FLAGS = (
    "--headless=new",  # and never --no-sandbox: the browser runs as an unprivileged user
    "--disable-dev-shm-usage",
    "--disable-gpu",
    # Without these Chromium phones home at start and on closed networks waits on it.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--window-size=1366,900",
    # Channels that could skip the proxy (and so the egress guard). WebRTC sends
    # STUN/TURN over UDP straight from the machine: only TCP through the proxy is left
    # to it (the switch was renamed once; both spellings are given). No QUIC (HTTP/3,
    # WebTransport): it is UDP and never goes through an HTTP proxy.
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--disable-quic",
    # Browser UI that headless Chromium still builds for every window: the address bar's
    # popups are web pages (WebUI) of their own, loaded in a renderer of their own for
    # each new window (every search's browser context opens one). Nothing reads them;
    # they cost about 0.4 CPU-s per search and 0.5 per browser start (docs/benchmarks.md,
    # bench_job). chromedriver adds its own disabled features to this list.
    "--disable-features=" + ",".join(DISABLED_FEATURES),
    f"--gaia-url={NOWHERE}",
    f"--component-updater=url-source={NOWHERE}",
)
# A browser started with ``images=False`` (search engines' pages) loads no image.
NO_IMAGES_BLINK_SETTINGS = "--blink-settings=imagesEnabled=false"
# The same as profile preferences (what the switches set), plus no DNS prefetching or
# preconnecting on a page's behalf, and a blank first window (not the new-tab page, a
# WebUI page that costs its renderer some 0.1 CPU-s at every start).
CHROME_PREFS = {
    "webrtc.ip_handling_policy": "disable_non_proxied_udp",
    "webrtc.multiple_routes_enabled": False,
    "webrtc.nonproxied_udp_enabled": False,
    "net.network_prediction_options": 2,  # never
    "session.restore_on_startup": 4,  # open the startup URLs
    "session.startup_urls": ["about:blank"],
}


@dataclass(frozen=True)
class BrowserOptions:
    """Where Chromium and its driver are and how the browser behaves
    (``downloader.config.browser_options_from_settings``: the IMAGEDL_* settings)."""

    chromium: str = ""  # empty: /usr/bin/chromium or PATH
    chromedriver: str = ""  # empty: /usr/bin/chromedriver or PATH
    allow_driver_download: bool = False  # webdriver-manager, when no driver is found
    page_load_timeout: float = 30.0
    # Resolve no name but localhost and 127.*: a browser that can reach nothing else (tests).
    loopback_only: bool = False
    user_agent: str = DEFAULT_USER_AGENT  # for publishers' pages (``for_pages``)
    # A root worker runs Chromium and chromedriver as this unprivileged system user.
    user: str = sandbox.DEFAULT_BROWSER_USER
    # Searches one kept browser serves, each in a fresh context, before it is restarted
    # (``downloader.browsers``); 1: a browser of its own for every search.
    max_uses: int = 20


class BrowserUnavailable(RuntimeError):
    """No Chromium or chromedriver could be found (and downloading is not allowed)."""


class BrowserStartFailed(RuntimeError):
    """Chromium or chromedriver was found but did not start (a passing fault, often)."""


def _first_existing(*candidates: str | None) -> str | None:
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    return None


def find_chromium(configured: str = "") -> str | None:
    """``configured`` if it exists, else Debian's or the first Chromium on PATH."""
    return _first_existing(
        configured or None,
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    )


def find_chromedriver(configured: str = "") -> str | None:
    """``configured`` (None if it does not exist), else Debian's or PATH's chromedriver."""
    if configured:
        return _first_existing(configured)
    return _first_existing("/usr/bin/chromedriver", shutil.which("chromedriver"))


def _driver_path(options: BrowserOptions) -> str:
    path = find_chromedriver(options.chromedriver)
    if path:
        return path
    if options.allow_driver_download:
        from webdriver_manager.chrome import ChromeDriverManager

        return ChromeDriverManager().install()
    raise BrowserUnavailable(
        "no chromedriver found: apt-get install chromium chromium-driver, set IMAGEDL_CHROMEDRIVER, "
        "or allow downloads with IMAGEDL_ALLOW_DRIVER_DOWNLOAD=true"
    )


def _launchers(binary: str, driver: str, profile: str, user: sandbox.BrowserUser) -> tuple[str, str, str]:
    """Launchers for Chromium and chromedriver: as ``user``, with the allow-listed
    environment (HOME is the profile folder), each killed with the process that starts
    it (chromedriver with the worker, Chromium with chromedriver), so no browser
    outlives its job even when ``finally`` never runs (SIGKILL, a task time-out).
    Returns their folder and the two launchers."""
    folder = sandbox.launchers_folder(user)
    env = sandbox.browser_environment(home=profile)
    # chromedriver already runs as the user: Chromium's launcher has nobody to switch to.
    chromium = sandbox.launcher(binary, folder, user=user, env=env, switch=False)
    return folder, chromium, sandbox.launcher(driver, folder, user=user, env=env)


def _sandboxed(options: BrowserOptions, binary: str, folders: list[str]) -> tuple[str, str, str]:
    """The run's profile folder (the browser user's own) and the launchers of Chromium
    and chromedriver; each folder made is added to ``folders``."""
    try:
        user = sandbox.browser_user(options.user)
        folders.append(profile := sandbox.private_folder("imagedl-chromium-", user))
        launchers, chromium, chromedriver = _launchers(binary, _driver_path(options), profile, user)
    except sandbox.SandboxUnavailable as exc:
        raise BrowserUnavailable(str(exc)) from exc
    folders.append(launchers)
    return profile, chromium, chromedriver


def _chrome_options(
    options: BrowserOptions,
    chromium: str,
    profile: str,
    size: tuple[int, int],
    egress: EgressGuard | None,
    for_pages: bool,
    images: bool,
):
    """Chromium's switches and preferences; ``chromium``: its launcher."""
    from selenium import webdriver

    chrome = webdriver.ChromeOptions()
    chrome.binary_location = chromium
    for flag in CHROME_FLAGS:
        chrome.add_argument(flag)
    chrome.add_argument(f"--window-size={size[0]},{size[1]}")
    chrome.add_argument(f"--user-data-dir={profile}")
    chrome.add_experimental_option("prefs", CHROME_PREFS)
    if for_pages:
        chrome.add_argument(f"--user-agent={options.user_agent}")
        chrome.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    if not images:
        chrome.add_argument(NO_IMAGES_BLINK_SETTINGS)  # no request, no decode
    if egress is not None:
        chrome.add_argument(f"--proxy-server={egress.url}")
        chrome.add_argument("--proxy-bypass-list=<-loopback>")  # no implicit bypass for loopback
        # The guard resolves names; the browser itself resolves none, so neither DNS
        # prefetching nor a script (a STUN server's name) can look up internal names.
        chrome.add_argument(f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {egress.host}")
    elif options.loopback_only:
        chrome.add_argument("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.*")
    chrome.page_load_strategy = "normal"
    return chrome


def _start_driver(options: BrowserOptions, chrome, chromedriver: str):
    """The WebDriver (``chromedriver``: its launcher); BrowserStartFailed when the driver
    or the browser would not start."""
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    try:
        service = Service(executable_path=chromedriver)
        driver = webdriver.Chrome(service=service, options=chrome)
    except WebDriverException as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BrowserStartFailed(first_line[:200]) from exc
    driver.set_page_load_timeout(options.page_load_timeout)
    driver.set_script_timeout(options.page_load_timeout)
    return driver


@dataclass
class Browser:
    """A started browser: its WebDriver and the folders (profile, launchers) it lives in."""

    driver: object
    folders: list[str]

    def quit(self) -> None:
        """Quit the browser (whatever state it is in) and remove its folders."""
        with contextlib.suppress(Exception):
            self.driver.quit()  # type: ignore[attr-defined]
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)


def browser_start(
    options: BrowserOptions | None = None,
    *,
    width: int = 1366,
    height: int = 900,
    egress: EgressGuard | None = None,
    for_pages: bool = False,
    images: bool = True,
) -> Browser:
    """A headless Chromium with a fresh profile folder; the caller quits it
    (``Browser.quit``). The arguments are ``open_browser``'s."""
    options = options or BrowserOptions()
    binary = find_chromium(options.chromium)
    if binary is None:
        raise BrowserUnavailable("no Chromium found: apt-get install chromium, or set IMAGEDL_CHROMIUM")
    folders: list[str] = []  # removed if the start fails, else with the browser
    try:
        profile, chromium, chromedriver = _sandboxed(options, binary, folders)
        chrome = _chrome_options(options, chromium, profile, (width, height), egress, for_pages, images)
        return Browser(_start_driver(options, chrome, chromedriver), folders)
    except BaseException:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        raise


@contextlib.contextmanager
def open_browser(
    options: BrowserOptions | None = None,
    *,
    width: int = 1366,
    height: int = 900,
    egress: EgressGuard | None = None,
    for_pages: bool = False,
    images: bool = True,
) -> Iterator:
    """A headless Chromium WebDriver, quit and its profile removed on exit. With
    ``egress``, every request the browser makes (loopback included) goes through that
    guard. ``for_pages``: a browser for reading a publisher's page, which names imagedl
    in its user agent (``options.user_agent``) and keeps a network log, so the page's
    response headers can be read (``X-Robots-Tag``); search engines' pages are read
    with the browser's own user agent. ``images=False``: its pages load no image (the
    search browser's: engines read full-size URLs from markup and JSON)."""
    browser = browser_start(
        options, width=width, height=height, egress=egress, for_pages=for_pages, images=images
    )
    try:
        yield browser.driver
    finally:
        browser.quit()
