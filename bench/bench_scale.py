"""What a second machine buys, on the local cluster of devtools.cluster (three Cassandra
nodes RF=3, PostgreSQL, Redis, s3proxy, two workers, two web processes), everything on
this machine's cores, everything over HTTP and SMTP as users see it:

  (a) --jobs jobs of --images images (realistic corpus, 8 image hosts with --latency)
      submitted through the form, on one worker (worker-2 killed), then on two; jobs
      per minute from the first submission to the last "ready" mail, and the ratio.
  (b) --submissions form submissions (for tomorrow, so nothing runs) at --concurrency,
      spread over the two web processes on PostgreSQL + Redis, then through one web
      process of the single-machine default (SQLite, the file cache, local disk, one
      Cassandra node, keyspace RF=1) with as many gunicorn processes as the two webs
      have together; then as many status JSON reads. Submissions per second, p50 and
      p99 of each; then every submitted job is checked: its status says scheduled and
      django-q2 holds its schedule. The workers are stopped during (b): it measures
      the web tier.
  (c) how long `devtools.cluster up` takes from nothing (fetched runtimes kept).

    .venv/bin/python -m bench.bench_scale [--jobs 60] [--images 50] [--submissions 400]

Targets: two workers >= 1.6x one worker's jobs per minute; submissions on
PostgreSQL + Redis >= 1.5x the default's with a lower p99.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.corpus import realistic_corpus
from bench.cpu_profile import CpuSampler
from devtools import cluster
from devtools.app_process import AppProcess
from tests.imagehosts import ImageHost
from tests.imitations.server import SearchImitation
from tests.mailserver import MailServer
from tests.web_client import WebClient

ROOT = Path(__file__).resolve().parent.parent

BENCH_ROOT = ROOT / "var" / "bench-scale"
HOSTS = [f"127.0.0.{n}" for n in range(71, 79)]
IMITATION = "127.0.0.79"
SCHEDULED_JOBS = "from django_q.models import Schedule; print(Schedule.objects.filter(name__regex=r'^job-[0-9a-f-]{36}$').count())"


def run(command: list[str], env: dict[str, str] | None = None, timeout: float = 1200) -> str:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{done.stdout}{done.stderr}"[-4000:])
    return done.stdout


def cluster_cli(*args: str) -> str:
    return run([sys.executable, "-m", "devtools.cluster", *args, "--root", str(BENCH_ROOT / "cluster")])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# --- (a) jobs per minute ------------------------------------------------------------------


def jobs_per_minute(webs: list[str], mail: MailServer, jobs: int, images: int, tag: str) -> tuple[float, str]:
    """Jobs per minute from the first submission to the last "ready" mail, and where
    the machine's CPU went meanwhile."""
    emails = [f"{tag}-{i}@example.org" for i in range(jobs)]
    clients = [WebClient(web) for web in webs]
    with CpuSampler() as sampler:
        started = time.monotonic()
        for index, email in enumerate(emails):
            clients[index % len(clients)].submit_ok(email, images)
        if not wait_ready(mail, emails, timeout=60 * 60):
            raise SystemExit(f"{tag}: not every one of {jobs} jobs delivered within an hour")
        minutes = (time.monotonic() - started) / 60
    return jobs / minutes, sampler.table()


def wait_ready(mail: MailServer, emails: list[str], timeout: float) -> bool:
    """Whether every address got its "ready" mail within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    waiting = set(emails)
    while waiting and time.monotonic() < deadline:
        waiting = {
            e for e in waiting if not any("are ready" in str(m["Subject"]) for m in mail.messages_to(e))
        }
        time.sleep(0.5)
    return not waiting


# --- (b) submissions and status reads -------------------------------------------------------


def timed_submissions(
    webs: list[str], count: int, concurrency: int
) -> tuple[list[float], float, list[tuple]]:
    """Submit ``count`` jobs for tomorrow; per-submission seconds, wall seconds, paths."""
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    clients = [WebClient(webs[i % len(webs)]) for i in range(concurrency)]
    for client in clients:
        client.csrf()

    def one(index: int) -> tuple[float, tuple]:
        client = clients[index % concurrency]
        t0 = time.perf_counter()
        path = client.submit_ok(f"s{index}-{uuid.uuid4().hex[:6]}@example.org", 10, run_at=tomorrow)
        return time.perf_counter() - t0, (client.base, path)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(count)))
    return [r[0] for r in results], time.perf_counter() - started, [r[1] for r in results]


def timed_status_reads(paths: list[tuple], concurrency: int) -> tuple[list[float], float, list[dict]]:
    clients = {base: WebClient(base) for base, _ in paths}

    def one(item: tuple) -> tuple[float, dict]:
        base, path = item
        t0 = time.perf_counter()
        state = clients[base].state(path)
        return time.perf_counter() - t0, state

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, paths))
    return [r[0] for r in results], time.perf_counter() - started, [r[1] for r in results]


def web_tier(name: str, webs: list[str], env: dict[str, str], args: argparse.Namespace) -> dict:
    with CpuSampler() as sampler:
        times, wall, paths = timed_submissions(webs, args.submissions, args.concurrency)
    cpu = sampler.table()
    reads, read_wall, states = timed_status_reads(paths, args.concurrency)
    scheduled_states = sum(1 for s in states if s.get("status") == "scheduled")
    answer = run([sys.executable, "manage.py", "shell", "-v0", "-c", SCHEDULED_JOBS], env=env)
    schedules = int(answer.strip().splitlines()[-1])
    return {
        "stack": name,
        "submissions_per_s": len(times) / wall,
        "submit_p50_ms": statistics.median(times) * 1000,
        "submit_p99_ms": percentile(times, 99) * 1000,
        "status_per_s": len(reads) / read_wall,
        "status_p50_ms": statistics.median(reads) * 1000,
        "status_p99_ms": percentile(reads, 99) * 1000,
        "stored_and_scheduled": f"{scheduled_states}/{len(times)} scheduled, {schedules} schedules",
        "cpu": cpu,
    }


def default_stack(layout: cluster.Layout, processes: int) -> tuple[AppProcess, dict[str, str]]:
    """The single-machine default: SQLite, file cache, local disk, one Cassandra node."""
    folder = BENCH_ROOT / "default"
    env = {
        k: v
        for k, v in layout.app_env("default").items()
        if k not in {"DATABASE_URL", "REDIS_URL", "IMAGEDL_S3_BUCKET", "CASSANDRA_LOCAL_DC"}
    }
    env.update(
        IMAGEDL_VAR_DIR=str(folder),
        CASSANDRA_HOSTS="127.0.0.1",
        CASSANDRA_KEYSPACE="imagedl_bench_default",
        CASSANDRA_REPLICATION="SimpleStrategy:1",
        CASSANDRA_CONSISTENCY="ONE",
        IMAGEDL_CLUSTER_WEB_WORKERS=str(processes),
    )
    for command in (["migrate", "--noinput", "-v0"], ["sync_cassandra", "-v0"]):
        run([sys.executable, "manage.py", *command], env=env)
    web = AppProcess(folder, "web-default", "web", env, cluster.choose_free_ports()["web"][0])
    web.start(timeout=120)
    return web, env


# --- the run ----------------------------------------------------------------------------------


def start_servers(latency: float) -> tuple[list[ImageHost], SearchImitation, MailServer]:
    folder, items = realistic_corpus(2000)
    hosts = [ImageHost(a, latency=latency, files=folder).start() for a in HOSTS]

    def image_url(index: int) -> str:
        return hosts[index % len(hosts)].url(f"/file/{items[(index - 1) % len(items)].name}")

    imitation = SearchImitation(IMITATION, image_url=image_url, total=400, batch_latency=0.3).start()
    return hosts, imitation, MailServer().start()


def cluster_environment(imitation: SearchImitation, mail: MailServer) -> dict[str, str]:

    allowed = ",".join(f"{a}/32" for a in (*HOSTS, IMITATION))
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("IMAGEDL_", "CASSANDRA_", "EMAIL_"))},
        **{k: str(v) for k, v in imitation.engine_settings(1.0).items()},
        "EMAIL_HOST": mail.host,
        "EMAIL_PORT": str(mail.port),
        "IMAGEDL_EXTRA_ALLOWED_NETWORKS": allowed,
        "IMAGEDL_LOG_LEVEL": "WARNING",
        "IMAGEDL_SUBMIT_RATE_PER_IP": "100000/h",
        "IMAGEDL_SUBMIT_RATE_PER_EMAIL": "100000/h",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--submissions", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args()

    hosts, imitation, mail = start_servers(args.latency)
    root = BENCH_ROOT / "cluster"
    if (root / "cluster.json").exists():
        cluster_cli("down")
    shutil.rmtree(BENCH_ROOT, ignore_errors=True)
    default_web = None
    try:
        t0 = time.monotonic()
        info = json.loads(
            run(
                [sys.executable, "-m", "devtools.cluster", "up", "--free-ports", "--root", str(root)],
                env=cluster_environment(imitation, mail),
            ).splitlines()[-1]
        )
        up_seconds = time.monotonic() - t0
        layout = cluster.Layout.load(root)
        webs = info["web"]
        cluster_cli("kill", "worker-2")
        print(
            f"(c) cluster up from nothing: {up_seconds:.1f} s (up's own figure: {info['seconds']} s)",
            flush=True,
        )
        one, one_cpu = jobs_per_minute(webs, mail, args.jobs, args.images, "one")
        print(f"(a) {args.jobs} jobs of {args.images} images: one worker {one:.2f} jobs/min", flush=True)
        print(f"    CPU, one worker:  {one_cpu}", flush=True)
        cluster_cli("start", "worker-2")
        two, two_cpu = jobs_per_minute(webs, mail, args.jobs, args.images, "two")
        print(f"    two workers {two:.2f} jobs/min: {two / one:.2f}x (target >= 1.6x)", flush=True)
        print(f"    CPU, two workers: {two_cpu}", flush=True)

        for name in info["workers"]:
            cluster_cli("kill", name)
        clustered = web_tier("PostgreSQL + Redis, 2 webs", webs, layout.app_env("setup"), args)
        web_processes = 2 * int(layout.app_env("web-1").get("IMAGEDL_CLUSTER_WEB_WORKERS", "2"))
        default_web, default_env = default_stack(layout, web_processes)
        single = web_tier("default (SQLite, file cache), 1 web", [default_web.url], default_env, args)
    finally:
        if default_web is not None:
            default_web.stop()
        if not args.keep and (root / "cluster.json").exists():
            cluster_cli("down")
        for server in (*hosts, imitation, mail):
            server.stop()

    print(f"(b) {args.submissions} submissions, concurrency {args.concurrency}:")
    for row in (clustered, single):
        print(
            f"    {row['stack']:<34} submit {row['submissions_per_s']:7.1f}/s  p50 {row['submit_p50_ms']:6.1f} ms"
            f"  p99 {row['submit_p99_ms']:7.1f} ms | status {row['status_per_s']:7.1f}/s"
            f"  p50 {row['status_p50_ms']:5.1f} ms  p99 {row['status_p99_ms']:6.1f} ms | {row['stored_and_scheduled']}"
        )
    for row in (clustered, single):
        print(f"    CPU while submitting, {row['stack']}: {row['cpu']}")
    ratio = clustered["submissions_per_s"] / single["submissions_per_s"]
    print(f"    submissions on PostgreSQL + Redis: {ratio:.2f}x the default's (target >= 1.5x, lower p99)")


if __name__ == "__main__":
    main()
