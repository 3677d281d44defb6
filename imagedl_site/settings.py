"""Django settings for imagedl.

Every value comes from the environment (see .env.example and docs/configuration.md) with
a default that works for local development and tests without any configuration.
"""

from __future__ import annotations

from pathlib import Path

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, ExecutionProfile
from cassandra.io.asyncioreactor import AsyncioConnection
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy
from django.core.exceptions import ImproperlyConfigured

from downloader import choices
from imagedl_site.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_int_list,
    env_list,
    env_str,
    parse_hosts,
    parse_replication,
    secret_key_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("IMAGEDL_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    # Zero-config: a random key kept in the git-ignored var/ folder, so signed links
    # survive restarts on a development machine without anyone choosing a key.
    return secret_key_file(VAR_DIR / "secret_key")


SECRET_KEY = _secret_key()
# True when the key came from this machine's var/secret_key: fine for one machine, wrong
# for several (imagedl.E001, jobs/checks.py).
SECRET_KEY_PER_MACHINE = not env_str("SECRET_KEY")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # First: its sync_cassandra (which also alters the keyspace's replication) overrides
    # django-cassandra-engine's; it has no templates or static files of its own.
    "jobs",
    "django_cassandra_engine",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "downloader",
    "ninja",  # the API's schema and docs pages, served from our own static files
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "imagedl_site.urls"
WSGI_APPLICATION = "imagedl_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "jobs.web.context_processors.site",
            ],
        },
    },
]

# --- Databases -------------------------------------------------------------------


def _relational_database(url: str) -> dict[str, object]:
    """Turn DATABASE_URL into a Django database dict (sqlite:/// or postgres://)."""
    from urllib.parse import unquote, urlsplit

    if not url:
        path = VAR_DIR / "imagedl.sqlite3"
        url = f"sqlite:///{path}"
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        name = unquote(parts.path)
        if name.startswith("//"):  # sqlite:////abs/path
            name = name[1:]
        if not name or name == "/":
            raise ImproperlyConfigured(f"DATABASE_URL={url!r} names no SQLite file")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "OPTIONS": {
                # WAL lets the web server read while the django-q2 worker writes; the
                # busy timeout and IMMEDIATE transactions avoid "database is locked".
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
            },
            # Keep connections: django-q2 closes expired ones before every enqueue, and
            # reopening (with the PRAGMAs) on each request doubled a submission's cost.
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
        }
    if parts.scheme in {"postgres", "postgresql"}:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
        }
    raise ImproperlyConfigured(f"DATABASE_URL={url!r}: scheme must be sqlite:/// or postgres://")


CASSANDRA_HOSTS = parse_hosts(env_list("CASSANDRA_HOSTS"))
# Unset CASSANDRA_HOSTS means "the project's own local node" (devtools/cassandra_node.py).
CASSANDRA_LOCAL_NODE = not CASSANDRA_HOSTS
CASSANDRA_PORT = env_int("CASSANDRA_PORT", 9042, minimum=1, maximum=65535)
CASSANDRA_KEYSPACE = env_str("CASSANDRA_KEYSPACE", "imagedl")
if not CASSANDRA_KEYSPACE.replace("_", "").isalnum() or len(CASSANDRA_KEYSPACE) > 40:
    raise ImproperlyConfigured(
        f"CASSANDRA_KEYSPACE={CASSANDRA_KEYSPACE!r}: use letters, digits and _ (at most 40)"
    )
CASSANDRA_REPLICATION = parse_replication(env_str("CASSANDRA_REPLICATION", "SimpleStrategy:1"))
CASSANDRA_FALLBACK_ORDER_BY_PYTHON = False
# The data centre whose nodes this process talks to (empty: the driver takes the first
# contact point's); reads and writes at CASSANDRA_CONSISTENCY, lightweight transactions
# (the conditional writes that guard a run's lease) at CASSANDRA_SERIAL_CONSISTENCY:
# LOCAL_SERIAL, or SERIAL by default with a local data centre among several, since
# LOCAL_SERIAL does not fence across data centres.
CASSANDRA_LOCAL_DC = env_str("CASSANDRA_LOCAL_DC", "")
CASSANDRA_CONSISTENCY = env_choice(
    "CASSANDRA_CONSISTENCY",
    "LOCAL_QUORUM",
    ("LOCAL_QUORUM", "QUORUM", "LOCAL_ONE", "ONE", "ALL", "EACH_QUORUM"),
)
_DATA_CENTRES = [
    name for name in CASSANDRA_REPLICATION if name not in ("strategy_class", "replication_factor")
]
CASSANDRA_SERIAL_CONSISTENCY = env_choice(
    "CASSANDRA_SERIAL_CONSISTENCY",
    "SERIAL" if CASSANDRA_LOCAL_DC and len(_DATA_CENTRES) > 1 else "LOCAL_SERIAL",
    ("LOCAL_SERIAL", "SERIAL"),
)

DATABASES = {
    "default": _relational_database(env_str("DATABASE_URL")),
    "cassandra": {
        "ENGINE": "django_cassandra_engine",
        "NAME": CASSANDRA_KEYSPACE,
        "HOST": ",".join(CASSANDRA_HOSTS or ["127.0.0.1"]),
        "USER": env_str("CASSANDRA_USER"),
        "PASSWORD": env_str("CASSANDRA_PASSWORD"),
        "TEST": {"NAME": f"test_{CASSANDRA_KEYSPACE}", "DEPENDENCIES": [], "SERIALIZE": False},
        "OPTIONS": {
            "replication": dict(CASSANDRA_REPLICATION),
            "connection": {
                # Connect on first use and reconnect after failures, so manage.py works
                # while the node is down and recovers when it comes back.
                "lazy_connect": True,
                "retry_connect": True,
                "port": CASSANDRA_PORT,
                "connect_timeout": env_float("CASSANDRA_CONNECT_TIMEOUT", 5.0, minimum=0.1),
                "control_connection_timeout": 5.0,
                # v4, not v5: the driver's v5 reader drops the bytes of a segment
                # header split across two socket reads and closes the connection with
                # "CRC mismatch on header" (tests/jobs/store/test_driver_framing.py).
                "protocol_version": 4,
                # libev's loop thread makes every process wait ~5 s at exit; asyncio's
                # does not.
                "connection_class": AsyncioConnection,
                "reconnection_policy": ExponentialReconnectionPolicy(base_delay=0.5, max_delay=10.0),
                "execution_profiles": {
                    EXEC_PROFILE_DEFAULT: ExecutionProfile(
                        load_balancing_policy=TokenAwarePolicy(
                            DCAwareRoundRobinPolicy(local_dc=CASSANDRA_LOCAL_DC or None)
                        ),
                        consistency_level=getattr(ConsistencyLevel, CASSANDRA_CONSISTENCY),
                        serial_consistency_level=getattr(ConsistencyLevel, CASSANDRA_SERIAL_CONSISTENCY),
                        request_timeout=env_float("CASSANDRA_QUERY_TIMEOUT", 10.0, minimum=0.1),
                    )
                },
            },
        },
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Internationalisation ----------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media files --------------------------------------------------------

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("IMAGEDL_STATIC_ROOT", str(VAR_DIR / "static")))
MEDIA_ROOT = Path(env_str("IMAGEDL_MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media-not-served/"  # archives are only reachable through signed links
STORAGES = {
    # Archives and previews go through jobs/storage.py: this disk, or the S3 bucket below.
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env_str(
            "IMAGEDL_STATICFILES_STORAGE",
            "whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}

# Archives and previews in an S3-compatible bucket (django-storages' S3 backend) when
# IMAGEDL_S3_BUCKET is set: web processes then share no disk with workers.
IMAGEDL_S3_BUCKET = env_str("IMAGEDL_S3_BUCKET", "")
AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL", "")  # empty: Amazon S3 itself
AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID", "")  # empty: boto3 finds credentials itself
AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY", "")
AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME", "us-east-1")
# The download link redirects to a presigned URL of the object (users must reach
# AWS_S3_ENDPOINT_URL), or, off, the web process streams the object itself.
IMAGEDL_S3_REDIRECT = env_bool("IMAGEDL_S3_REDIRECT", True)
IMAGEDL_S3_URL_SECONDS = env_int("IMAGEDL_S3_URL_SECONDS", 300, minimum=10, maximum=7 * 24 * 3600)

# --- Email -------------------------------------------------------------------------

EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "imagedl <imagedl@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)

# --- The product -------------------------------------------------------------------

IMAGEDL_BASE_URL = env_str("IMAGEDL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
if not IMAGEDL_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"IMAGEDL_BASE_URL={IMAGEDL_BASE_URL!r} must start with http:// or https://")
IMAGEDL_RETENTION_MINUTES = env_int("IMAGEDL_RETENTION_MINUTES", 30, minimum=1)
# Safety net behind the purge: personal cells expire by themselves after this long.
IMAGEDL_PERSONAL_TTL_DAYS = env_int("IMAGEDL_PERSONAL_TTL_DAYS", 45, minimum=1)
# How far ahead a job may be scheduled.
IMAGEDL_MAX_SCHEDULE_DAYS = env_int("IMAGEDL_MAX_SCHEDULE_DAYS", 30, minimum=1)
# Runs of one job (a killed worker re-delivers the task) before it fails for good.
IMAGEDL_JOB_MAX_ATTEMPTS = env_int("IMAGEDL_JOB_MAX_ATTEMPTS", 3, minimum=1)
# Tries to send one email while the mail server is down, with doubling delays.
IMAGEDL_EMAIL_MAX_TRIES = env_int("IMAGEDL_EMAIL_MAX_TRIES", 8, minimum=1)
IMAGEDL_EMAIL_RETRY_SECONDS = env_int("IMAGEDL_EMAIL_RETRY_SECONDS", 30, minimum=1)
# Emails one recipient may get per day (UTC), whoever asks for them; 0: no cap.
IMAGEDL_MAILS_PER_RECIPIENT_PER_DAY = env_int("IMAGEDL_MAILS_PER_RECIPIENT_PER_DAY", 20, minimum=0)
# How often the purge task runs.
IMAGEDL_PURGE_EVERY_MINUTES = env_int("IMAGEDL_PURGE_EVERY_MINUTES", 1, minimum=1)
# A run holds its job with a lease it renews every third of this; a run whose lease ran
# out is taken over (by the reaper's next pass, or a copy of its task).
IMAGEDL_LEASE_SECONDS = env_int("IMAGEDL_LEASE_SECONDS", 60, minimum=3)
# How far apart the machines' clocks may be (they need NTP): a lease counts as run out
# only this long after its time, so a machine whose clock is ahead steals no live run.
IMAGEDL_CLOCK_SKEW_SECONDS = env_int("IMAGEDL_CLOCK_SKEW_SECONDS", 10, minimum=0)
# How often the reaper looks for jobs and mails nobody is working on.
IMAGEDL_REAPER_EVERY_MINUTES = env_int("IMAGEDL_REAPER_EVERY_MINUTES", 1, minimum=1)
# A scheduled job this long past its time with no run, or a mail queued this long ago
# and not sent, is queued again by the reaper.
IMAGEDL_REAPER_GRACE_SECONDS = env_int("IMAGEDL_REAPER_GRACE_SECONDS", 120, minimum=1)
# Cassandra or the browser unreachable: the run steps back and is queued again after
# IMAGEDL_TRANSIENT_BACKOFF_SECONDS (doubling, at most 5 min), this many times.
IMAGEDL_TRANSIENT_RETRIES = env_int("IMAGEDL_TRANSIENT_RETRIES", 6, minimum=0)
IMAGEDL_TRANSIENT_BACKOFF_SECONDS = env_int("IMAGEDL_TRANSIENT_BACKOFF_SECONDS", 10, minimum=1)
# A recurring series stops by itself after this many runs, or after this many runs in
# a row that delivered nothing new.
IMAGEDL_SERIES_MAX_RUNS = env_int("IMAGEDL_SERIES_MAX_RUNS", 52, minimum=1)
IMAGEDL_SERIES_MAX_EMPTY_RUNS = env_int("IMAGEDL_SERIES_MAX_EMPTY_RUNS", 3, minimum=1)
# Live (pending or active) series at most per mailbox, per client address (an IPv6
# client per /64) and in all: past one, the form refuses a new series (400).
IMAGEDL_MAX_SERIES_PER_MAILBOX = env_int("IMAGEDL_MAX_SERIES_PER_MAILBOX", 3, minimum=1)
IMAGEDL_MAX_SERIES_PER_IP = env_int("IMAGEDL_MAX_SERIES_PER_IP", 5, minimum=1)
IMAGEDL_MAX_ACTIVE_SERIES = env_int("IMAGEDL_MAX_ACTIVE_SERIES", 10_000, minimum=1)
# Double opt-in: a series runs only once its first mail's link is confirmed; unconfirmed
# this long, it expires and its personal data is purged.
IMAGEDL_SERIES_CONFIRM_HOURS = env_int("IMAGEDL_SERIES_CONFIRM_HOURS", 48, minimum=1)

# --- Background jobs (django-q2) ---------------------------------------------------

IMAGEDL_JOB_TIMEOUT = env_int("IMAGEDL_JOB_TIMEOUT", 1800, minimum=10)
Q_CLUSTER = {
    "name": "imagedl",
    "orm": "default",
    "workers": env_int("IMAGEDL_Q_WORKERS", 2, minimum=1),
    "timeout": IMAGEDL_JOB_TIMEOUT,
    # retry must exceed timeout, or django-q2 hands a slow task to a second worker.
    "retry": env_int("IMAGEDL_TASK_RETRY", IMAGEDL_JOB_TIMEOUT + 300, minimum=IMAGEDL_JOB_TIMEOUT + 1),
    "max_attempts": 0,  # attempts are counted on the job itself
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "poll": 1,
    "sync": env_bool("IMAGEDL_Q_SYNC", False),
}
# Redis as the broker and the shared cache when REDIS_URL is set (redis://host:port/db).
# The broker takes tasks with no lease: a task whose worker dies is gone, and the
# reaper (jobs/reaper.py) queues its job again once the run's lease runs out.
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r} must start with redis://, rediss:// or unix://")
    del Q_CLUSTER["orm"]  # django-q2 prefers the ORM broker while "orm" is set
    Q_CLUSTER["redis"] = REDIS_URL

# --- Logging -----------------------------------------------------------------------

LOG_LEVEL = env_str("IMAGEDL_LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"IMAGEDL_LOG_LEVEL={LOG_LEVEL!r} must be DEBUG, INFO, WARNING, ERROR or CRITICAL"
    )
LOG_FILE = Path(env_str("IMAGEDL_LOG_FILE", str(VAR_DIR / "log" / "imagedl.log")))
LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
# plain: one line of text per record; json: one JSON object per line (time, level,
# logger, process, message, and job_id, run_id, series_id, task where known).
LOG_FORMAT = env_choice("IMAGEDL_LOG_FORMAT", "plain", ("plain", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
        },
    },
    # No log line holds a link's token (Django's "Not Found: /jobs/<token>/"); each
    # carries the job, run, series and task it is about (jobs.lib.logcontext).
    "filters": {
        "tokenless": {"()": "imagedl_site.access_log.TokenFilter"},
        "context": {"()": "jobs.lib.logcontext.LogContextFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["tokenless", "context"],
        },
        "file": {
            "filters": ["tokenless", "context"],
            "class": "logging.handlers.RotatingFileHandler",
            "filename": str(LOG_FILE),
            "maxBytes": env_int("IMAGEDL_LOG_MAX_BYTES", 10 * 1024 * 1024, minimum=1024),
            "backupCount": env_int("IMAGEDL_LOG_BACKUPS", 5, minimum=0),
            "formatter": LOG_FORMAT,
            "encoding": "utf-8",
        },
    },
    "root": {"handlers": ["console", "file"], "level": LOG_LEVEL},
    "loggers": {
        "cassandra": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
        "urllib3": {"level": "WARNING"},
        "selenium": {"level": "WARNING"},
    },
}

# --- Security ----------------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
_https = IMAGEDL_BASE_URL.startswith("https://")
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
if _https:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Strict-Transport-Security on https responses (Django sends it only over https).
SECURE_HSTS_SECONDS = env_int("IMAGEDL_HSTS_SECONDS", 31_536_000 if _https else 0, minimum=0)

# --- Cache (shared between web and worker processes: django-q2 cluster stats, rate
# limits) ---------------------------------------------------------------------------


def _redis_cache_url(broker_url: str) -> str:
    """The broker's Redis server, the next database number: clearing the cache empties
    its whole database, and must not take the queue with it."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(broker_url)
    number = parts.path.strip("/") or "0"
    if not number.isdigit():
        raise ImproperlyConfigured(f"REDIS_URL={broker_url!r}: the path must be a database number")
    return urlunsplit(parts._replace(path=f"/{int(number) + 1}"))


if REDIS_URL and not env_str("IMAGEDL_CACHE_BACKEND"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env_str("REDIS_CACHE_URL", _redis_cache_url(REDIS_URL)),
        }
    }
else:
    CACHES = {
        "default": {
            # jobs.lib.cache.FileCache: Django's file cache that never culls a live rate-limit counter.
            "BACKEND": env_str("IMAGEDL_CACHE_BACKEND", "jobs.lib.cache.FileCache"),
            "LOCATION": env_str("IMAGEDL_CACHE_LOCATION", str(VAR_DIR / "cache")),
        }
    }

# --- Download engine (downloader/: fetching, validation, archives) ------------------
# (owned by the download-engine work; keep every IMAGEDL_* download setting here)

# --- Search engines and the browser (downloader/engines, downloader/browser.py) -----
# (owned by the search-engine work; keep every engine and browser setting here)
IMAGEDL_ALLOW_PRIVATE_NETWORKS = env_bool("IMAGEDL_ALLOW_PRIVATE_NETWORKS", False)
IMAGEDL_MAX_IMAGE_BYTES = env_int("IMAGEDL_MAX_IMAGE_BYTES", 25 * 1024 * 1024, minimum=1024)
IMAGEDL_MAX_PIXELS = env_int("IMAGEDL_MAX_PIXELS", 80_000_000, minimum=10_000)
# The junk floor: an image with either side under this many pixels (tracking pixels,
# spacers, icons) is rejected. A job's minimum size can only raise it; the commands'
# --min-size sets it for one run.
IMAGEDL_MIN_SIDE = env_int("IMAGEDL_MIN_SIDE", 64, minimum=0)
# One file's validation ends after this long (checked between frames of an animation).
IMAGEDL_VALIDATION_SECONDS = env_float("IMAGEDL_VALIDATION_SECONDS", 15.0, minimum=0.1)
# Pixels decoded at once by all threads of a process (4 bytes each at most): bounds the
# memory a burst of large images can take.
IMAGEDL_DECODE_PIXEL_BUDGET = env_int("IMAGEDL_DECODE_PIXEL_BUDGET", 32_000_000, minimum=1_000_000)
# glibc malloc arenas (0: glibc's default of 8 per core): fewer arenas waste less memory
# among the many download and decode threads.
IMAGEDL_MALLOC_ARENAS = env_int("IMAGEDL_MALLOC_ARENAS", 2, minimum=0)
IMAGEDL_DOWNLOAD_CONCURRENCY = env_int("IMAGEDL_DOWNLOAD_CONCURRENCY", 32, minimum=1, maximum=512)
IMAGEDL_PER_HOST_CONNECTIONS = env_int("IMAGEDL_PER_HOST_CONNECTIONS", 4, minimum=1, maximum=64)
IMAGEDL_CONNECT_TIMEOUT = env_float("IMAGEDL_CONNECT_TIMEOUT", 5.0, minimum=0.1)
IMAGEDL_READ_TIMEOUT = env_float("IMAGEDL_READ_TIMEOUT", 10.0, minimum=0.1)
IMAGEDL_TOTAL_TIMEOUT = env_float("IMAGEDL_TOTAL_TIMEOUT", 30.0, minimum=0.5)
IMAGEDL_MAX_REDIRECTS = env_int("IMAGEDL_MAX_REDIRECTS", 5, minimum=0)
IMAGEDL_MAX_RETRIES = env_int("IMAGEDL_MAX_RETRIES", 2, minimum=0)
# Image downloads, robots.txt and the page extractor's browser say who they are and
# where to read about it (the search engines' own pages keep the browser's agent).
IMAGEDL_USER_AGENT = env_str(
    "IMAGEDL_USER_AGENT", f"Mozilla/5.0 (compatible; imagedl/0.1; +{IMAGEDL_BASE_URL})"
)
# Publishers who opt out (X-Robots-Tag or <meta name="robots"> noai / noimageai) are skipped.
IMAGEDL_RESPECT_NOAI = env_bool("IMAGEDL_RESPECT_NOAI", True)
IMAGEDL_EXTRA_ALLOWED_NETWORKS = env_list("IMAGEDL_EXTRA_ALLOWED_NETWORKS", [])

# Search engines and the browser (downloader/engines/, downloader/browser.py)
IMAGEDL_BING_URL = env_str("IMAGEDL_BING_URL", "https://www.bing.com").rstrip("/")
IMAGEDL_DUCKDUCKGO_URL = env_str("IMAGEDL_DUCKDUCKGO_URL", "https://duckduckgo.com").rstrip("/")
IMAGEDL_GOOGLE_URL = env_str("IMAGEDL_GOOGLE_URL", "https://www.google.com").rstrip("/")
try:
    IMAGEDL_ENGINE_ORDER = choices.check_engine_order(env_list("IMAGEDL_ENGINE_ORDER", list(choices.ENGINES)))
except ValueError as exc:
    raise ImproperlyConfigured(f"IMAGEDL_ENGINE_ORDER names {exc}") from None
IMAGEDL_CHROMIUM = env_str("IMAGEDL_CHROMIUM", "")  # empty: /usr/bin/chromium or PATH
IMAGEDL_CHROMEDRIVER = env_str("IMAGEDL_CHROMEDRIVER", "")  # empty: /usr/bin/chromedriver or PATH
# A root worker runs Chromium and chromedriver as this unprivileged system user (make setup
# creates it); a worker that is not root runs them as itself. docs/security.md.
IMAGEDL_BROWSER_USER = env_str("IMAGEDL_BROWSER_USER", "imagedl-browser")
IMAGEDL_ALLOW_DRIVER_DOWNLOAD = env_bool("IMAGEDL_ALLOW_DRIVER_DOWNLOAD", False)
# Searches one worker process's browser serves (each in a fresh browser context) before
# it is restarted; 1: a new browser for every search. docs/architecture.md.
IMAGEDL_BROWSER_MAX_USES = env_int("IMAGEDL_BROWSER_MAX_USES", 20, minimum=1)
IMAGEDL_PAGE_LOAD_TIMEOUT = env_float("IMAGEDL_PAGE_LOAD_TIMEOUT", 30.0, minimum=1.0)
IMAGEDL_SCROLL_WAIT = env_float("IMAGEDL_SCROLL_WAIT", 6.0, minimum=0.2)
# Tests: the browser resolves no host name but localhost and its egress guard lets
# nothing leave 127.0.0.0/8 (Chromium phones home even with background networking off).
IMAGEDL_BROWSER_LOOPBACK_ONLY = env_bool("IMAGEDL_BROWSER_LOOPBACK_ONLY", False)

# --- Public web ----------------------------------------------------------------------
IMAGEDL_SUBMIT_RATE_PER_IP = env_str("IMAGEDL_SUBMIT_RATE_PER_IP", "20/h")
IMAGEDL_SUBMIT_RATE_PER_EMAIL = env_str("IMAGEDL_SUBMIT_RATE_PER_EMAIL", "10/h")
# Client address header set by your proxy (e.g. HTTP_X_FORWARDED_FOR); empty: REMOTE_ADDR.
IMAGEDL_CLIENT_IP_HEADER = env_str("IMAGEDL_CLIENT_IP_HEADER", "")
# How many proxies in front of the app append to that header (the client is that many
# entries from the right).
IMAGEDL_TRUSTED_PROXIES = env_int("IMAGEDL_TRUSTED_PROXIES", 1, minimum=1)
IMAGEDL_HEALTHZ_TOKEN = env_str("IMAGEDL_HEALTHZ_TOKEN", "")

# --- Metrics (jobs.lib.metrics, jobs.ops) -----------------------------------------------
# /metrics answers loopback callers (while IMAGEDL_CLIENT_IP_HEADER is unset) and callers
# sending "Authorization: Bearer <this token>"; anyone else gets a 404.
IMAGEDL_METRICS_TOKEN = env_str("IMAGEDL_METRICS_TOKEN", "")
# The worker (which has no web server) answers /metrics on its own small listener: on
# loopback by default; port 0 turns it off.
IMAGEDL_WORKER_METRICS_HOST = env_str("IMAGEDL_WORKER_METRICS_HOST", "127.0.0.1")
IMAGEDL_WORKER_METRICS_PORT = env_int("IMAGEDL_WORKER_METRICS_PORT", 9810, minimum=0)

# --- API (jobs.api) and webhooks -------------------------------------------------------
# Requests per API key (every method), as the submission limits: "120/m", 0 for none.
IMAGEDL_API_RATE_PER_KEY = env_str("IMAGEDL_API_RATE_PER_KEY", "120/m")
# Seconds before each new try of a webhook that failed; after the last, it is given up.
IMAGEDL_WEBHOOK_RETRY_SECONDS = env_int_list(
    "IMAGEDL_WEBHOOK_RETRY_SECONDS", [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400], minimum=1
)

MIDDLEWARE.insert(1, "jobs.web.middleware.SecurityHeadersMiddleware")
CSRF_FAILURE_VIEW = "jobs.web.views.csrf_failure"
