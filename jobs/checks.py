"""System checks with stable ids, run by manage.py check and at server start.

imagedl.W001  no chromedriver found
imagedl.W002  no mail host set (mail goes to the console)
imagedl.W003  Cassandra cannot be reached
imagedl.W004  the cache can drop live rate-limit counters (per-process or culling)
imagedl.W005  a root worker has no unprivileged user to run the browser as
imagedl.E001  several machines share work, but SECRET_KEY is this machine's own
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

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


# What says processes run on several machines: a shared queue, a shared relational
# database, shared archives.
SHARED_BY_MACHINES = {
    "REDIS_URL": lambda: bool(settings.REDIS_URL),
    "DATABASE_URL": lambda: settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    "IMAGEDL_S3_BUCKET": lambda: bool(settings.IMAGEDL_S3_BUCKET),
}


@register(Tags.security)
def check_secret_key_shared(app_configs=None, **kwargs):
    """A per-machine key (var/secret_key) cannot serve several machines: tasks signed on
    one are dropped by another's workers, links made by one web fail on the next. An
    error, so ``check --deploy`` and every command that checks (a worker's start) stop."""
    if not settings.SECRET_KEY_PER_MACHINE:
        return []
    shared = [name for name, is_set in SHARED_BY_MACHINES.items() if is_set()]
    if not shared:
        return []
    return [
        Error(
            f"{', '.join(shared)} is set, so processes may run on several machines, but SECRET_KEY "
            "is not: each machine would make its own key in var/secret_key.",
            hint="Set SECRET_KEY, the same on every machine (docs/deployment.md).",
            id="imagedl.E001",
        )
    ]


@register(Tags.compatibility)
def check_browser_user(app_configs=None, **kwargs):
    from downloader.sandbox import SandboxUnavailable, browser_user  # the worker's own rule

    try:
        browser_user(settings.IMAGEDL_BROWSER_USER)
    except SandboxUnavailable as exc:
        return [
            Warning(
                f"The browser cannot run sandboxed: {exc}.",
                hint="make setup creates the user; or set IMAGEDL_BROWSER_USER, or run the worker "
                "as an unprivileged user.",
                id="imagedl.W005",
            )
        ]
    return []


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
