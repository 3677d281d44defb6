"""Web throughput under gunicorn with the local Cassandra node, on loopback.

50 concurrent clients against the home page and the status JSON (wrk), and against
job submission (Python clients that fetch the form, keep the CSRF cookie and post);
then the API beside them: GET /api/v1/jobs/{id} (wrk, with a key) and POST /api/v1/jobs
(Python clients posting JSON with a key).
Prints requests/s and p50/p99 latency, then checks that every accepted submission is
in Cassandra and scheduled. Uses its own keyspace (bench_web) and SQLite file, with
the submission rate limits off.

    .venv/bin/python -m bench.bench_web [--seconds 10] [--clients 50] [--workers 3] [--threads 4]  (the Procfile's defaults)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
PORT = 8200
PY = sys.executable


def bench_env() -> dict[str, str]:
    var = ROOT / "var" / "bench"
    var.mkdir(parents=True, exist_ok=True)
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="imagedl_site.settings",
        CASSANDRA_KEYSPACE="bench_web",
        DATABASE_URL=f"sqlite:///{var / 'web.sqlite3'}",
        IMAGEDL_SUBMIT_RATE_PER_IP="0",
        IMAGEDL_SUBMIT_RATE_PER_EMAIL="0",
        IMAGEDL_API_RATE_PER_KEY="0",
        IMAGEDL_LOG_LEVEL="WARNING",
    )


SETUP = """
import datetime as dt
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connections
from jobs.store import cassandra
from jobs.lib import links
from jobs.core import services
for table in ("job", "job_by_day", "job_day", "job_event", "job_run_image", "job_purge_due"):
    cassandra.execute(f"TRUNCATE bench_web.{table}", timeout=30)
for table in ("job_by_owner", "api_key", "api_key_list", "api_idempotency", "webhook_target", "webhook_delivery"):
    cassandra.execute(f"TRUNCATE bench_web.{table}", timeout=30)
from django_q.models import OrmQ, Schedule
Schedule.objects.filter(name__startswith="job-").delete(); OrmQ.objects.all().delete()
job = services.job_submit(email="b@example.org", query="bench", requested_count=5,
                          run_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1), time_zone="UTC")
path = default_storage.save("archives/bench.zip", ContentFile(b"PK"))
services.job_start_attempt(job)
assert services.job_complete(job, archive_path=path, archive_bytes=2, kept=5)
Schedule.objects.filter(name=f"job-{job.id}").delete()  # only submissions are counted below
print("TOKEN", links.token_make(job.id, "status"))
from jobs.store.api_keys import api_key_create
print("JOB", job.id, "KEY", api_key_create(email="b@example.org").read_write)
"""

VERIFY = """
from jobs.store import cassandra
from django_q.models import Schedule
rows = cassandra.execute("SELECT count(*) FROM bench_web.job", timeout=60).one()
print("JOBS", list(rows.values())[0] - 1, "SCHEDULES", Schedule.objects.filter(name__startswith="job-").count())
"""


def manage(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [PY, "manage.py", *args],
        cwd=ROOT,
        env=bench_env(),
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def wrk(path: str, seconds: int, clients: int, *headers: str) -> str:
    extra = [arg for header in headers for arg in ("-H", header)]
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{clients}",
            f"-d{seconds}s",
            "--latency",
            *extra,
            f"http://127.0.0.1:{PORT}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
    p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return f"{float(rps):8.1f} req/s  p50 {p50:>8}  p99 {p99:>8}  non-2xx {non2xx.group(1) if non2xx else 0}"


Post = tuple[str, str, dict[str, str]]  # path, body, headers


def timed_posts(
    seconds: int,
    clients: int,
    prepare: Callable[[http.client.HTTPConnection, int], Callable[[int], Post]],
    ok: int,
) -> tuple[int, int, list[float]]:
    """``clients`` threads, each on a connection of its own, POST for ``seconds``:
    ``prepare(conn, number)`` gives the client's ``post(n)`` (its n-th request). How many
    answered ``ok``, how many did not, and every latency."""
    accepted, failed, latencies = [0], [0], []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        post = prepare(conn, number)
        n = 0
        while time.monotonic() < deadline:
            n += 1
            path, body, headers = post(n)
            started = time.monotonic()
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            took = time.monotonic() - started
            with lock:
                latencies.append(took)
                if response.status == ok:
                    accepted[0] += 1
                else:
                    failed[0] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return accepted[0], failed[0], latencies


def form_posts(conn: http.client.HTTPConnection, number: int) -> Callable[[int], Post]:
    """A browser's session: the form's page once (its cookie and CSRF token), then posts."""
    conn.request("GET", "/")
    response = conn.getresponse()
    page = response.read().decode()
    cookie = response.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": cookie,
        "Referer": f"http://127.0.0.1:{PORT}/",
    }

    def post(n: int) -> Post:
        fields = {
            "csrfmiddlewaretoken": token,
            "query": f"bench {number}-{n}",
            "page_url": "",
            "count": "10",
            "email": f"c{number}@example.org",
            "run_date": tomorrow,
            "run_time": "12:00",
            "time_zone": "UTC",
            "min_width": "0",
            "min_height": "0",
            "engine": "auto",
        }
        return "/", urlencode(fields), headers

    return post


def api_posts(key: str) -> Callable[[http.client.HTTPConnection, int], Callable[[int], Post]]:
    """Clients of POST /api/v1/jobs: JSON, the key in X-Api-Key."""
    tomorrow = time.strftime("%Y-%m-%dT12:00:00+00:00", time.gmtime(time.time() + 86400))
    headers = {"Content-Type": "application/json", "X-Api-Key": key}

    def prepare(conn: http.client.HTTPConnection, number: int) -> Callable[[int], Post]:
        def post(n: int) -> Post:
            body = {"query": f"api bench {number}-{n}", "count": 10, "run_at": tomorrow}
            return "/api/v1/jobs", json.dumps(body), headers

        return post

    return prepare


def summary(label: str, seconds: int, accepted: int, failed: int, latencies: list[float]) -> str:
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return (
        f"{label}{accepted / seconds:8.1f} jobs/s  p50 {p50:6.1f}ms  p99 {p99:6.1f}ms  "
        f"accepted {accepted}, refused {failed}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    manage("migrate", "-v0")
    manage("sync_cassandra", "-v0")
    manage("collectstatic", "--noinput", "-v0")
    made = manage("shell", stdin=SETUP)
    token = re.search(r"TOKEN (\S+)", made).group(1)
    job_id, key = re.search(r"JOB (\S+) KEY (\S+)", made).groups()
    server = subprocess.Popen(
        [
            PY,
            "-m",
            "gunicorn",
            "imagedl_site.wsgi",
            "--config",
            "python:imagedl_site.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=bench_env(),
    )
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(1)
        print(
            f"gunicorn: {args.workers} workers x {args.threads} threads; {args.clients} clients; {args.seconds} s each"
        )
        print("home page   ", wrk("/", args.seconds, args.clients))
        print("status JSON ", wrk(f"/jobs/{token}/status.json", args.seconds, args.clients))
        form = timed_posts(args.seconds, args.clients, form_posts, ok=302)
        print(summary("submission  ", args.seconds, *form))
        print("API GET job ", wrk(f"/api/v1/jobs/{job_id}", args.seconds, args.clients, f"X-Api-Key: {key}"))
        api = timed_posts(args.seconds, args.clients, api_posts(key), ok=201)
        print(summary("API POST job", args.seconds, *api))
        accepted = form[0] + api[0]
    finally:
        server.terminate()
        server.wait(20)
    jobs, schedules = re.search(r"JOBS (\d+) SCHEDULES (\d+)", manage("shell", stdin=VERIFY)).groups()
    print(
        f"in Cassandra: {jobs} jobs; scheduled: {schedules}; accepted: {accepted} -> "
        f"{'nothing lost' if int(jobs) == accepted and int(schedules) == accepted else 'MISMATCH'}"
    )


if __name__ == "__main__":
    main()
