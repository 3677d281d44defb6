"""Settings for the test suite: the real settings with test-only storage and mail, on
the suite's own Cassandra node (tests/suite_node.py)."""

import importlib

from imagedl_site.env import env_list
from tests import suite_node

# Before the project's settings read CASSANDRA_PORT: the suite's node, its own ports.
suite_node.configure_environment()
_project = importlib.import_module("imagedl_site.settings")
globals().update({name: value for name, value in vars(_project).items() if name.isupper()})

TEST_DIR = _project.VAR_DIR / "test"
MEDIA_ROOT = TEST_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Manifest storage needs collectstatic; tests serve static files as they are.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# In-memory mail, except for worker processes that end-to-end tests point at their
# own SMTP server through EMAIL_HOST.
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if _project.EMAIL_HOST
    else "django.core.mail.backends.locmem.EmailBackend"
)
if not _project.REDIS_URL:  # a worker started with REDIS_URL keeps the Redis cache it implies
    CACHES = {
        "default": {
            "BACKEND": "jobs.lib.cache.FileCache",
            "LOCATION": str(TEST_DIR / "cache"),
        }
    }
# Tests stand up image hosts and search-engine imitations on 127.0.0.0/8, and the
# address guards run as in production: only the exact addresses of the servers a test
# started are let in (the fixtures in tests/fixtures/hosts.py add them to the allowed networks).
IMAGEDL_ALLOW_PRIVATE_NETWORKS = False
# Empty in the pytest process; a worker it starts gets that test's servers through the
# environment (start_worker), which must therefore be read here too.
IMAGEDL_EXTRA_ALLOWED_NETWORKS: list[str] = env_list("IMAGEDL_EXTRA_ALLOWED_NETWORKS", [])
# ...and Chromium must reach nothing else, not even the services it calls on its own.
IMAGEDL_BROWSER_LOOPBACK_ONLY = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# A file, not memory: worker processes started by tests (manage.py qcluster) share it.
_project.DATABASES["default"]["TEST"] = {"NAME": str(TEST_DIR / "test.sqlite3")}
