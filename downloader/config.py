"""The library's configuration from Django's settings: the one module of ``downloader``
(with its AppConfig and its commands) that reads ``django.conf.settings``.

Below its entry points the library takes plain values (policies and options, each
with defaults of its own); a Django project builds them here from its IMAGEDL_*
settings. Each function reads the settings when it is called, so a changed setting
(tests) is seen by the next value made.
"""

from __future__ import annotations

import dataclasses

from django.conf import settings

from downloader.browser import BrowserOptions
from downloader.egress import EgressGuard
from downloader.engines.base import EngineOptions
from downloader.engines.page import PageOptions
from downloader.gather import GatherOptions
from downloader.http import Fetcher, FetchPolicy
from downloader.validation import ValidationLimits, fix_mmap_threshold, limit_malloc_arenas, set_decode_budget

ENGINE_URL_SETTINGS = {
    "bing": "IMAGEDL_BING_URL",
    "duckduckgo": "IMAGEDL_DUCKDUCKGO_URL",
    "google": "IMAGEDL_GOOGLE_URL",
}


def fetch_policy_from_settings(**overrides: object) -> FetchPolicy:
    """The download chokepoint's policy; ``overrides`` replace single fields."""
    policy = FetchPolicy(
        allow_private=settings.IMAGEDL_ALLOW_PRIVATE_NETWORKS,
        connect_timeout=settings.IMAGEDL_CONNECT_TIMEOUT,
        read_timeout=settings.IMAGEDL_READ_TIMEOUT,
        total_timeout=settings.IMAGEDL_TOTAL_TIMEOUT,
        max_bytes=settings.IMAGEDL_MAX_IMAGE_BYTES,
        max_redirects=settings.IMAGEDL_MAX_REDIRECTS,
        max_retries=settings.IMAGEDL_MAX_RETRIES,
        user_agent=settings.IMAGEDL_USER_AGENT,
        extra_allowed=tuple(settings.IMAGEDL_EXTRA_ALLOWED_NETWORKS),
        respect_noai=settings.IMAGEDL_RESPECT_NOAI,
    )
    return dataclasses.replace(policy, **overrides)  # type: ignore[arg-type]


def fetcher_from_settings(*, concurrency: int | None = None, per_host: int | None = None) -> Fetcher:
    """A Fetcher under the settings' policy and limits (``concurrency`` and ``per_host``,
    when given, replace IMAGEDL_DOWNLOAD_CONCURRENCY and IMAGEDL_PER_HOST_CONNECTIONS)."""
    return Fetcher(
        fetch_policy_from_settings(),
        concurrency=concurrency or settings.IMAGEDL_DOWNLOAD_CONCURRENCY,
        per_host=per_host or settings.IMAGEDL_PER_HOST_CONNECTIONS,
    )


def validation_limits_from_settings() -> ValidationLimits:
    return ValidationLimits(
        max_pixels=settings.IMAGEDL_MAX_PIXELS,
        min_side=settings.IMAGEDL_MIN_SIDE,
        max_seconds=settings.IMAGEDL_VALIDATION_SECONDS,
    )


def browser_options_from_settings() -> BrowserOptions:
    return BrowserOptions(
        chromium=settings.IMAGEDL_CHROMIUM,
        chromedriver=settings.IMAGEDL_CHROMEDRIVER,
        allow_driver_download=settings.IMAGEDL_ALLOW_DRIVER_DOWNLOAD,
        page_load_timeout=settings.IMAGEDL_PAGE_LOAD_TIMEOUT,
        loopback_only=settings.IMAGEDL_BROWSER_LOOPBACK_ONLY,
        user_agent=settings.IMAGEDL_USER_AGENT,
        user=settings.IMAGEDL_BROWSER_USER,
        max_uses=settings.IMAGEDL_BROWSER_MAX_USES,
    )


def engine_options_from_settings() -> EngineOptions:
    return EngineOptions(
        order=tuple(settings.IMAGEDL_ENGINE_ORDER),
        urls={name: getattr(settings, setting) for name, setting in ENGINE_URL_SETTINGS.items()},
        scroll_wait=settings.IMAGEDL_SCROLL_WAIT,
    )


def page_options_from_settings(**overrides: object) -> PageOptions:
    """How a user's page is read; ``overrides`` replace single fields (``scroll_wait``)."""
    options = PageOptions(fetch=fetch_policy_from_settings(), scroll_wait=settings.IMAGEDL_SCROLL_WAIT)
    return dataclasses.replace(options, **overrides)  # type: ignore[arg-type]


def gather_options_from_settings() -> GatherOptions:
    return GatherOptions(
        fetch=fetch_policy_from_settings(),
        concurrency=settings.IMAGEDL_DOWNLOAD_CONCURRENCY,
        per_host=settings.IMAGEDL_PER_HOST_CONNECTIONS,
        validation=validation_limits_from_settings(),
        browser=browser_options_from_settings(),
        engines=engine_options_from_settings(),
    )


def decoding_configure() -> None:
    """Size the process's decode budget (IMAGEDL_DECODE_PIXEL_BUDGET), cap its malloc
    arenas (IMAGEDL_MALLOC_ARENAS) and fix the size from which allocations get pages of
    their own (``fix_mmap_threshold``); at start-up, before any download thread exists."""
    set_decode_budget(settings.IMAGEDL_DECODE_PIXEL_BUDGET)
    limit_malloc_arenas(settings.IMAGEDL_MALLOC_ARENAS)
    fix_mmap_threshold()


def egress_guard_from_settings() -> EgressGuard:
    """A (not yet started) guard under the settings' policy and loopback rule."""
    return EgressGuard(fetch_policy_from_settings(), loopback_only=settings.IMAGEDL_BROWSER_LOOPBACK_ONLY)
