"""System checks with stable ids, run by manage.py check and at server start.

imagedl.W001  no chromedriver found
imagedl.W002  no mail host set (mail goes to the console)
imagedl.W003  Cassandra cannot be reached
imagedl.W004  the cache can drop live rate-limit counters (per-process or culling)
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register

from jobs.store.cassandra import ping


@register(Tags.compatibility)
def check_chromedriver(app_configs=None, **kwargs):
    from downloader.browser import find_chromedriver  # the worker's own lookup
    from downloader.config import browser_options_from_settings

    if find_chromedriver(browser_options_from_settings().chromedriver):
        return []
    return [
        Warning(
            "No chromedriver was found, so search jobs cannot drive a browser.",
            hint="apt-get install chromium chromium-driver, or set IMAGEDL_CHROMEDRIVER.",
            id="imagedl.W001",
        )
    ]


@register(Tags.compatibility)
def check_mail_host(app_configs=None, **kwargs):
    if settings.EMAIL_HOST:
        return []
    return [
        Warning(
            "No mail host is set: emails are printed to the console, not sent.",
            hint="Set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, ...) to send real mail.",
            id="imagedl.W002",
        )
    ]


@register("cassandra")
def check_cassandra(app_configs=None, **kwargs):
    try:
        ping(timeout=2.0)
    except Exception as exc:  # any driver error means "not reachable"
        hosts = ", ".join(settings.CASSANDRA_HOSTS or ["127.0.0.1"])
        return [
            Warning(
                f"Cassandra cannot be reached at {hosts}:{settings.CASSANDRA_PORT} ({type(exc).__name__}).",
                hint="Start the local node with `make cassandra` or fix CASSANDRA_HOSTS.",
                id="imagedl.W003",
            )
        ]
    return []


# Caches whose counters are shared between processes and never culled while live.
COUNTER_SAFE_CACHES = {"jobs.lib.cache.FileCache", "django.core.cache.backends.redis.RedisCache"}


@register(Tags.caches)
def check_rate_limit_cache(app_configs=None, **kwargs):
    backend = settings.CACHES["default"]["BACKEND"]
    if backend in COUNTER_SAFE_CACHES:
        return []
    return [
        Warning(
            f"The cache {backend} can lose submission rate-limit counters (it culls them or "
            "keeps them per process), which hands clients a fresh allowance.",
            hint="Use jobs.lib.cache.FileCache on one machine or "
            "django.core.cache.backends.redis.RedisCache when scaled out.",
            id="imagedl.W004",
        )
    ]
