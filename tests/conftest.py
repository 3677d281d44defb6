"""Test fixtures shared by every test file.

The suite runs against a real Cassandra node: a node of its own (tests/suite_node.py:
its own data folder and ports, started when the session starts and stopped when it
ends), never the node ``make run`` uses, unless CASSANDRA_HOSTS points elsewhere.
``suite_cassandra`` is that node, for tests that stop or kill it. Django's test database
set-up creates the test keyspace ``test_<CASSANDRA_KEYSPACE>`` and syncs the tables
into it; ``cassandra_db`` truncates them before each test that uses it.

Servers on loopback, each stopped after the test:
  ``start_image_host``, ``image_host``, ``image_hosts``   image hosts (tests/imagehosts.py)
  ``start_imitation``, ``imitation``                   search-engine imitations (tests/imitations)
  ``mailserver``                                       an SMTP server (tests/mailserver.py)
Each gets its own 127.0.0.x address (the download engine limits connections per host
name). ``@pytest.mark.image_hosts(...)`` and ``@pytest.mark.imitation(...)`` on a test
or module change what ``image_hosts`` and ``imitation`` start.

Jobs are made with tests/factories.py.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import suite_node
from tests.imagehosts import ImageHost, image_urls
from tests.imitations import SearchImitation
from tests.mailserver import MailServer


def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "image_hosts(count=3, latency=0.02): what the image_hosts fixture starts",
        "imitation(**options): start_imitation options for the imitation fixture",
        "screenshots: takes the README's screenshots (make screenshots refreshes docs/screenshots/)",
    ):
        config.addinivalue_line("markers", line)


def pytest_sessionstart(session: pytest.Session) -> None:
    _stop_workers_left_behind()
    if suite_node.own_node():
        suite_node.start()


def _stop_workers_left_behind() -> None:
    """Kill worker processes an earlier session of this clone left running (a session
    killed outright never stops them): they would take this session's tasks, and they
    hold the test database the session is about to delete."""
    from django.conf import settings

    marker = f"DATABASE_URL=sqlite:///{settings.TEST_DIR / 'test.sqlite3'}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


@pytest.hookimpl(trylast=True)  # after the session's fixtures (the test keyspace) are torn down
def pytest_sessionfinish(session: pytest.Session) -> None:
    if suite_node.own_node() and not os.environ.get("IMAGEDL_TEST_KEEP_NODE"):
        _close_cassandra_sessions()
        suite_node.stop()


def _close_cassandra_sessions() -> None:
    """Shut this process's driver sessions down before their node stops (else they keep
    trying to reconnect while the interpreter exits)."""
    from cassandra.cqlengine import connection

    for name in list(connection._connections):
        with contextlib.suppress(Exception):
            connection.unregister_connection(name)


@pytest.fixture
def suite_cassandra():
    """The suite's own node (``devtools.cassandra_node.Node``), for tests that stop or
    kill it: afterwards it is started again if it is down, and this process's session
    answers again, before the next test."""
    if not suite_node.own_node():
        pytest.skip("stops the suite's own node (CASSANDRA_HOSTS is set)")
    yield suite_node.node()
    suite_node.ensure_up()


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    shutil.rmtree(settings.TEST_DIR, ignore_errors=True)
    settings.TEST_DIR.mkdir(parents=True)
    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=0, interactive=False, aliases={"default", "cassandra"}, serialized_aliases=set()
        )
    yield
    with django_db_blocker.unblock():
        teardown_databases(config, verbosity=0)


@pytest.fixture
def cassandra_db(django_db_setup):
    """A clean test keyspace: every table truncated before the test."""
    from django.db import connections

    from jobs.store import cassandra

    conn = connections["cassandra"]
    keyspace = conn.settings_dict["NAME"]
    assert keyspace.startswith("test_"), keyspace
    tables = {m.__table_name__ for models in conn.introspection.cql_models.values() for m in models}
    assert "job" in tables, tables
    for table in sorted(tables):
        cassandra.execute(f"TRUNCATE {keyspace}.{table}", timeout=30)
    yield keyspace


@pytest.fixture
def worker_env(django_db_setup):
    """Environment for a subprocess that must see the test databases (worker, web)."""
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        DATABASE_URL=f"sqlite:///{settings.DATABASES['default']['NAME']}",
        CASSANDRA_KEYSPACE=settings.DATABASES["cassandra"]["NAME"],
        PYTHONUNBUFFERED="1",
    )
    return env


def _start_worker(env: dict, log_dir) -> subprocess.Popen:
    from django.conf import settings

    log_path = Path(log_dir) / f"worker-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg reaches Chromium too
        )
    proc.log_path = log_path
    return proc


def stop_worker(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def start_worker(worker_env, cassandra_db):
    """Start real django-q2 clusters (manage.py qcluster) against the test databases.

    ``start_worker(EMAIL_PORT="2525", ...)`` adds environment variables;
    ``start_worker(imitation, ...)`` sends its searches to that imitation. Tests using it
    need `@pytest.mark.django_db(transaction=True, databases="__all__")`: the worker only
    sees committed rows, and django-q2 touches every connection.
    """
    from django.conf import settings

    started: list[subprocess.Popen] = []

    def start(imitation: SearchImitation | None = None, **extra: str) -> subprocess.Popen:
        env = dict(worker_env)
        if imitation is not None:  # its searches go to the imitation
            env.update((name, str(value)) for name, value in imitation.engine_settings().items())
        # The worker lets in the servers this test started, and nothing else private.
        env["IMAGEDL_EXTRA_ALLOWED_NETWORKS"] = ",".join(settings.IMAGEDL_EXTRA_ALLOWED_NETWORKS)
        proc = _start_worker({**env, **extra}, settings.TEST_DIR)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_worker(proc)


@pytest.fixture
def worker(start_worker):
    """One worker with the default test environment."""
    return start_worker()


# --- engines of several machines: PostgreSQL, Redis, S3 (devtools starters) ----------
# Started on first use, once per session, in var/test-engines/ on free ports; stopped
# when the session ends.


def _engine_dir(name: str) -> Path:
    from django.conf import settings

    return Path(settings.VAR_DIR) / "test-engines" / name


def _fresh(server) -> None:
    """No data of an earlier session (nor its server, if it was left running)."""
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL of the suite's own (devtools.postgres.Postgres); ``.url`` is its
    DATABASE_URL (role and database imagedl)."""
    from devtools.postgres import Postgres
    from tests.mailserver import free_port

    server = Postgres(_engine_dir("postgres"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server():
    """A Redis of the suite's own (devtools.redis_server.RedisServer); ``.url`` is a REDIS_URL."""
    from devtools.redis_server import RedisServer
    from tests.mailserver import free_port

    server = RedisServer(_engine_dir("redis"), free_port())
    _fresh(server)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server():
    """An s3proxy of the suite's own (devtools.s3proxy.S3Proxy); ``s3_settings`` turns it on."""
    from devtools.s3proxy import S3Proxy
    from tests.mailserver import free_port

    server = S3Proxy(_engine_dir("s3proxy"), free_port(), "suite-identity", "suite-credential-0123456789")
    _fresh(server)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_settings(s3_server, settings):
    """Archives and previews in a fresh bucket of ``s3_server`` for this test, in this
    process (``settings``) and, through the returned environment, in workers it starts."""
    from jobs.core import storage

    env = {
        "IMAGEDL_S3_BUCKET": f"test-{time.monotonic_ns()}",
        "AWS_S3_ENDPOINT_URL": s3_server.url,
        "AWS_ACCESS_KEY_ID": s3_server.identity,
        "AWS_SECRET_ACCESS_KEY": s3_server.credential,
        "AWS_S3_REGION_NAME": "us-east-1",
    }
    for name, value in env.items():
        setattr(settings, name, value)
    assert storage.ensure_bucket()
    return env


# --- servers on loopback ------------------------------------------------------------

# 127.0.0.2-99 are left to tests that need a fixed address (allow-lists).
_addresses = itertools.cycle(f"127.0.0.{n}" for n in range(100, 255))


def _options(request: pytest.FixtureRequest, marker: str, **defaults: object) -> dict:
    found = request.node.get_closest_marker(marker)
    return {**defaults, **(found.kwargs if found else {})}


def allow_address(settings, address: str) -> None:
    """Let the address guards in this process (and workers started later) reach one
    server of the test: its exact address, as an operator would allow a mirror."""
    network = f"{address}/32"
    if network not in settings.IMAGEDL_EXTRA_ALLOWED_NETWORKS:
        settings.IMAGEDL_EXTRA_ALLOWED_NETWORKS = [*settings.IMAGEDL_EXTRA_ALLOWED_NETWORKS, network]


@pytest.fixture
def start_image_host(settings):
    """``start_image_host(latency=0.0, address=None, files=None)``: a started
    ``ImageHost`` (``files``: a folder it serves under /file/)."""
    started: list[ImageHost] = []

    def start(*, latency: float = 0.0, address: str | None = None, files: Path | None = None) -> ImageHost:
        host = ImageHost(address or next(_addresses), latency=latency, files=files).start()
        allow_address(settings, host.address)
        started.append(host)
        return host

    yield start
    for host in started:
        host.stop()


@pytest.fixture
def image_host(start_image_host) -> ImageHost:
    """One image host that answers at once."""
    return start_image_host()


@pytest.fixture
def image_hosts(request, start_image_host) -> list[ImageHost]:
    """Three image hosts, 20 ms a response; ``@pytest.mark.image_hosts(count=, latency=)``."""
    options = _options(request, "image_hosts", count=3, latency=0.02)
    return [start_image_host(latency=options["latency"]) for _ in range(options["count"])]


def _nowhere(index: int) -> str:
    return f"http://127.0.0.30:9/img/{index}.jpeg"  # the discard port: nothing is served


@pytest.fixture
def start_imitation(settings):
    """``start_imitation(image_url=..., total=..., address=None, scroll_wait=2.0, ...)``:
    a started ``SearchImitation`` (options as its constructor). The settings send the
    three engines to the last one started, with that scroll wait; results point
    nowhere unless ``image_url`` says (see ``tests.imagehosts.image_urls``)."""
    started: list[SearchImitation] = []

    def start(
        *,
        image_url: Callable[[int], str] = _nowhere,
        address: str | None = None,
        scroll_wait: float = 2.0,
        **options: object,
    ) -> SearchImitation:
        server = SearchImitation(address or next(_addresses), image_url=image_url, **options).start()
        allow_address(settings, server.address)
        started.append(server)
        for name, value in server.engine_settings(scroll_wait).items():
            setattr(settings, name, value)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def imitation(request, start_imitation, image_hosts) -> SearchImitation:
    """The three engines, imitated, with results that are real images on ``image_hosts``.
    ``@pytest.mark.imitation(total=..., ...)`` passes options to ``start_imitation``;
    ``junk=lambda i: ...`` makes those results HTML pages instead (``image_urls``)."""
    options = _options(request, "imitation")
    options.setdefault("image_url", image_urls(image_hosts, junk=options.pop("junk", None)))
    return start_imitation(**options)


@pytest.fixture(scope="module")
def driver():
    """One headless Chromium shared by a module's engine tests."""
    from downloader.browser import open_browser
    from downloader.config import browser_options_from_settings

    with open_browser(browser_options_from_settings()) as browser:
        yield browser


@pytest.fixture
def mailserver():
    """An SMTP server on loopback that keeps what it receives."""
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh_shared_cache():
    """Each test starts with an empty shared cache: submission limits and the daily
    cap on mails per recipient count within one test, not across the session."""
    from django.core.cache import cache

    cache.clear()
