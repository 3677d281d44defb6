"""The one way to get a browser: headless Debian Chromium through Selenium.

Debian's chromium and chromedriver when present, configured paths otherwise, and
webdriver-manager only when IMAGEDL_ALLOW_DRIVER_DOWNLOAD is on. Each request gets its own
browser with a fresh profile folder, and the browser is always quit. Chromium and
chromedriver run with Chromium's sandbox on, as an unprivileged user, with an
allow-listed environment (``downloader.sandbox``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

from downloader import sandbox

if TYPE_CHECKING:
    from downloader.egress import EgressGuard

os.environ.setdefault("SE_OFFLINE", "true")  # no Selenium Manager downloads
os.environ.setdefault("SE_AVOID_STATS", "true")

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
)
# The same as profile preferences (what the switches set), plus no DNS prefetching or
# preconnecting on a page's behalf.
CHROME_PREFS = {
    "webrtc.ip_handling_policy": "disable_non_proxied_udp",
    "webrtc.multiple_routes_enabled": False,
    "webrtc.nonproxied_udp_enabled": False,
    "net.network_prediction_options": 2,  # never
}


class BrowserUnavailable(RuntimeError):
    """No Chromium or chromedriver could be found (and downloading is not allowed)."""


class BrowserStartFailed(RuntimeError):
    """Chromium or chromedriver was found but did not start (a passing fault, often)."""


def _first_existing(*candidates: str | None) -> str | None:
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    return None


def find_chromium() -> str | None:
    return _first_existing(
        settings.IMAGEDL_CHROMIUM or None,
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    )


def find_chromedriver() -> str | None:
    if settings.IMAGEDL_CHROMEDRIVER:
        return _first_existing(settings.IMAGEDL_CHROMEDRIVER)
    return _first_existing("/usr/bin/chromedriver", shutil.which("chromedriver"))


def _driver_path() -> str:
    path = find_chromedriver()
    if path:
        return path
    if settings.IMAGEDL_ALLOW_DRIVER_DOWNLOAD:
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


@contextlib.contextmanager
def open_browser(
    *, width: int = 1366, height: int = 900, egress: EgressGuard | None = None, for_pages: bool = False
) -> Iterator:
    """A headless Chromium WebDriver, quit and its profile removed on exit. With
    ``egress``, every request the browser makes (loopback included) goes through that
    guard. ``for_pages``: a browser for reading a publisher's page, which names imagedl
    in its user agent (IMAGEDL_USER_AGENT) and keeps a network log, so the page's
    response headers can be read (``X-Robots-Tag``); search engines' pages are read
    with the browser's own user agent."""
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    binary = find_chromium()
    if binary is None:
        raise BrowserUnavailable("no Chromium found: apt-get install chromium, or set IMAGEDL_CHROMIUM")
    driver_path = _driver_path()
    folders: list[str] = []  # removed on exit, whatever happens
    try:
        user = sandbox.browser_user()
        folders.append(profile := sandbox.private_folder("imagedl-chromium-", user))
        launchers, chromium, chromedriver = _launchers(binary, driver_path, profile, user)
        folders.append(launchers)
    except sandbox.SandboxUnavailable as exc:
        _remove(folders)
        raise BrowserUnavailable(str(exc)) from exc
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--user-data-dir={profile}")
    options.add_experimental_option("prefs", CHROME_PREFS)
    if for_pages:
        options.add_argument(f"--user-agent={settings.IMAGEDL_USER_AGENT}")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    if egress is not None:
        options.add_argument(f"--proxy-server={egress.url}")
        options.add_argument("--proxy-bypass-list=<-loopback>")  # no implicit bypass for loopback
        # The guard resolves names; the browser itself resolves none, so neither DNS
        # prefetching nor a script (a STUN server's name) can look up internal names.
        options.add_argument(f"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {egress.host}")
    elif settings.IMAGEDL_BROWSER_LOOPBACK_ONLY:
        options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.*")
    options.page_load_strategy = "normal"
    driver = None
    try:
        try:
            service = Service(executable_path=chromedriver)
            driver = webdriver.Chrome(service=service, options=options)
        except WebDriverException as exc:  # the driver or the browser would not start
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise BrowserStartFailed(first_line[:200]) from exc
        driver.set_page_load_timeout(settings.IMAGEDL_PAGE_LOAD_TIMEOUT)
        driver.set_script_timeout(settings.IMAGEDL_PAGE_LOAD_TIMEOUT)
        yield driver
    finally:
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.quit()
        _remove(folders)


def _remove(folders: list[str]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
