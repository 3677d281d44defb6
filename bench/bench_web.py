"""Web throughput under gunicorn with the local Cassandra node, on loopback.

50 concurrent clients against the home page and the status JSON (wrk), and against
job submission (Python clients that fetch the form, keep the CSRF cookie and post);
then the API beside them: GET /api/v1/jobs/{id} (wrk, with a key) and POST /api/v1/jobs
(Python clients posting JSON with a key).
The status JSON twice: one job's URL (mostly each process's one-second memory of it),
and ``--distinct`` different jobs' URLs in random order (wrk with a Lua script).
Prints requests/s and p50/p99 latency, and the CPU time the gunicorn processes and the
Cassandra node spent per request (user+sys from /proc, in milliseconds), then checks
that every accepted submission is in Cassandra and scheduled. Uses its own keyspace
(bench_web) and SQLite file, with the submission rate limits off.

    .venv/bin/python -m bench.bench_web [--seconds 10] [--clients 50] [--workers 3] [--threads 4]  (the Procfile's defaults)
        [--distinct 2000] [--port 8200] [--only home,status,distinct,form,api-get,api-post]
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

from bench import open_loop

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT  # --checkout: the checkout whose server (and manage.py) is measured
PORT = 8200  # --port
PY = sys.executable
PHASES = ("home", "status", "distinct", "form", "api-get", "api-post")
TICKS = os.sysconf("SC_CLK_TCK")


def bench_env() -> dict[str, str]:
    var = APP / "var" / "bench"
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
import sys
from concurrent.futures import ThreadPoolExecutor
def distinct(n):  # scheduled for tomorrow, without a schedule: their status pages only
    made = services.job_submit(email=f"d{n}@example.org", query=f"distinct {n}", requested_count=5,
                               run_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1), time_zone="UTC")
    connections.close_all()
    return links.token_make(made.id, "status")
with ThreadPoolExecutor(8) as pool:
    tokens = list(pool.map(distinct, range(DISTINCT)))
Schedule.objects.filter(name__startswith="job-").delete(); OrmQ.objects.all().delete()
print("TOKENS", " ".join(tokens))
"""

VERIFY = """
from jobs.store import cassandra
from django_q.models import Schedule
rows = cassandra.execute("SELECT count(*) FROM bench_web.job", timeout=60).one()
print("JOBS", list(rows.values())[0] - 1 - DISTINCT, "SCHEDULES", Schedule.objects.filter(name__startswith="job-").count())
"""


def manage(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [PY, "manage.py", *args],
        cwd=APP,
        env=bench_env(),
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def process_cpu(pid: int) -> float:
    """User+sys CPU seconds of one process (its threads included), 0 once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree_pids(root: int) -> list[int]:
    """``root`` and its children (gunicorn's master and workers)."""
    pids = [root]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == root:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return pids


def cassandra_pid() -> int | None:
    """The bench's Cassandra node (devtools.cassandra_node's pid file), if it is local."""
    from devtools import cassandra_node

    pid_file = cassandra_node.data_root() / "node1" / "cassandra.pid"
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


class CpuMeter:
    """CPU seconds spent by gunicorn (master and workers) and the Cassandra node
    between ``start()`` and ``text(requests)``."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.node_pid = cassandra_pid()
        self.before = (0.0, 0.0)

    def _now(self) -> tuple[float, float]:
        web = sum(process_cpu(pid) for pid in tree_pids(self.server_pid))
        return web, process_cpu(self.node_pid) if self.node_pid else 0.0

    def start(self) -> None:
        self.before = self._now()

    def text(self, requests: int) -> str:
        web, node = (after - before for after, before in zip(self._now(), self.before, strict=True))
        per = 1000 / max(requests, 1)
        return f"  cpu/req: web {web * per:5.2f} ms, cassandra {node * per:5.2f} ms"


def wrk(path: str, seconds: int, clients: int, *headers: str, script: Path | None = None) -> tuple[str, int]:
    """The figures of one wrk run and how many requests it made."""
    extra = [arg for header in headers for arg in ("-H", header)]
    if script is not None:
        extra += ["-s", str(script)]
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
    total = int(re.search(r"(\d+) requests in", out).group(1))
    text = f"{float(rps):8.1f} req/s  p50 {p50:>8}  p99 {p99:>8}  non-2xx {non2xx.group(1) if non2xx else 0}"
    return text, total


def urls_script(paths: list[str]) -> Path:
    """A wrk Lua script that asks for one of ``paths`` at random on every request."""
    script = ROOT / "var" / "bench" / "distinct.lua"
    listed = ",\n".join(f'"{path}"' for path in paths)
    script.write_text(
        f"local paths = {{\n{listed}\n}}\n"
        "request = function()\n"
        '  return wrk.format("GET", paths[math.random(#paths)])\n'
        "end\n"
    )
    return script


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


def form_session(conn: http.client.HTTPConnection) -> tuple[str, str]:
    """A browser's first visit: the form's page, its CSRF cookie and token."""
    conn.request("GET", "/")
    response = conn.getresponse()
    page = response.read().decode()
    cookie = response.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    return cookie, token


def form_post(cookie: str, token: str, label: str, number: int, n: int) -> Post:
    """Client ``number``'s ``n``-th submission of the form (a job for tomorrow)."""
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": cookie,
        "Referer": f"http://127.0.0.1:{PORT}/",
    }
    fields = {
        "csrfmiddlewaretoken": token,
        "query": f"bench {label}{number}-{n}",
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


def form_posts(conn: http.client.HTTPConnection, number: int) -> Callable[[int], Post]:
    """A browser's session: the form's page once (its cookie and CSRF token), then posts."""
    cookie, token = form_session(conn)
    return lambda n: form_post(cookie, token, "", number, n)


def open_form_requests(sessions: int) -> Callable[[int], bytes]:
    """The open loop's submissions: ``sessions`` browsers (one form page each, first),
    request ``i`` posted as browser ``i % sessions``."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    known = [form_session(conn) for _ in range(sessions)]
    conn.close()

    def request(i: int) -> bytes:
        cookie, token = known[i % sessions]
        path, body, headers = form_post(cookie, token, "o", i % sessions, i)
        return open_loop.request_post("127.0.0.1", path, body, headers)

    return request


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
    global PORT, APP
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--distinct", type=int, default=2000, help="jobs whose status URLs the second status figure asks for"
    )
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument(
        "--checkout",
        type=Path,
        default=ROOT,
        help="another checkout's server, measured by these clients (before/after)",
    )
    parser.add_argument("--only", default=",".join(PHASES), help="comma-separated: " + ",".join(PHASES))
    parser.add_argument(
        "--mode",
        default="closed,open",
        help="closed (wrk, clients), open (a fixed rate: home and form), or both",
    )
    parser.add_argument("--home-rate", type=float, default=1500, help="the open loop's home page requests/s")
    parser.add_argument("--form-rate", type=float, default=300, help="the open loop's submissions/s")
    parser.add_argument("--sessions", type=int, default=50, help="the open loop's browsers posting the form")
    args = parser.parse_args()
    PORT, APP = args.port, args.checkout.resolve()
    phases = set(args.only.split(","))
    modes = set(args.mode.split(","))
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    manage("migrate", "-v0")
    manage("sync_cassandra", "-v0")
    manage("collectstatic", "--noinput", "-v0")
    made = manage("shell", stdin=SETUP.replace("DISTINCT", str(args.distinct)))
    token = re.search(r"TOKEN (\S+)", made).group(1)
    job_id, key = re.search(r"JOB (\S+) KEY (\S+)", made).groups()
    tokens = re.search(r"TOKENS ?(.*)", made).group(1).split()
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
        cwd=APP,
        env=bench_env(),
    )
    accepted = 0
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
        cpu = CpuMeter(server.pid)

        def measured_wrk(label: str, path: str, *headers: str, script: Path | None = None) -> None:
            cpu.start()
            text, total = wrk(path, args.seconds, args.clients, *headers, script=script)
            print(label, text + cpu.text(total))

        def measured_posts(label: str, prepare: Callable, ok: int) -> int:
            cpu.start()
            result = timed_posts(args.seconds, args.clients, prepare, ok=ok)
            print(summary(label, args.seconds, *result) + cpu.text(result[0] + result[1]))
            return result[0]

        def measured_open(label: str, rate: float, request: Callable[[int], bytes], ok: int) -> int:
            cpu.start()
            result = open_loop.open_loop("127.0.0.1", PORT, rate, args.seconds, request)
            refused = len(result.latencies) - result.count(ok)
            print(f"{label} {result.text()}  not {ok}: {refused}" + cpu.text(len(result.latencies)))
            return result.count(ok)

        closed, opened = "closed" in modes, "open" in modes
        if "home" in phases and closed:
            measured_wrk("home page   ", "/")
        if "home" in phases and opened:
            home = open_loop.request_get("127.0.0.1", "/")
            measured_open("home page, open loop ", args.home_rate, lambda n: home, 200)
        if "status" in phases and closed:
            measured_wrk("status JSON ", f"/jobs/{token}/status.json")
        if "distinct" in phases and tokens and closed:
            script = urls_script([f"/jobs/{each}/status.json" for each in tokens])
            measured_wrk(f"status JSON, {len(tokens)} jobs", "/", script=script)
        if "form" in phases and closed:
            accepted += measured_posts("submission  ", form_posts, 302)
        if "form" in phases and opened:
            request = open_form_requests(args.sessions)
            accepted += measured_open("submission, open loop", args.form_rate, request, 302)
        if "api-get" in phases and closed:
            measured_wrk("API GET job ", f"/api/v1/jobs/{job_id}", f"X-Api-Key: {key}")
        if "api-post" in phases and closed:
            accepted += measured_posts("API POST job", api_posts(key), 201)
    finally:
        server.terminate()
        server.wait(20)
    verify = VERIFY.replace("DISTINCT", str(len(tokens)))
    jobs, schedules = re.search(r"JOBS (\d+) SCHEDULES (\d+)", manage("shell", stdin=verify)).groups()
    print(
        f"in Cassandra: {jobs} jobs; scheduled: {schedules}; accepted: {accepted} -> "
        f"{'nothing lost' if int(jobs) == accepted and int(schedules) == accepted else 'MISMATCH'}"
    )


if __name__ == "__main__":
    main()
