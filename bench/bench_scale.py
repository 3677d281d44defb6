"""What a job costs and what a second machine buys, everything on this machine's cores,
everything over HTTP and SMTP as users see it. Two stacks:

  default  the `make run` stack: `devtools.run_all` (one django-q2 worker, gunicorn with
           --default-web-workers processes) on one Cassandra node of its own (RF 1),
           SQLite, the file cache, local disk;
  cluster  devtools.cluster: three Cassandra nodes RF=3, PostgreSQL, Redis, s3proxy,
           two workers, two web processes.

  (a) --jobs jobs of --images images (realistic corpus, 8 image hosts with --latency)
      submitted at once through the form; jobs per minute from the first submission to
      the last "ready" mail; CPU-seconds per job and milliseconds per delivered image by
      kind of process (/proc, only the bench's own processes: see bench.cpu_profile),
      and Cassandra requests per job run and per submission by kind (read, write,
      batch, lightweight transaction), from the servers' own /metrics
      (imagedl_cassandra_statements), and S3 requests per job by operation with the
      bytes sent (imagedl_s3_requests). On the cluster: one worker (worker-2 killed),
      then two, and the ratio.
  (b) --submissions form submissions (for tomorrow, so nothing runs) at --concurrency
      on each stack; submissions per second, p50 and p99; then as many status JSON
      reads; then every submitted job is checked: its status says scheduled and
      django-q2 holds its schedule. On the cluster the workers are stopped during (b).
  (c) how long `devtools.cluster up` takes from nothing (fetched runtimes kept).

    .venv/bin/python -m bench.bench_scale [--stacks default,cluster] [--jobs 20] [--images 50]

Targets: two workers >= 1.6x one worker's jobs per minute; submissions on
PostgreSQL + Redis >= 1.5x the default's with a lower p99; (#25) CPU per delivered
image on the default stack <= 30 ms, the machine's busy time less the imitations'.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.corpus import realistic_corpus
from bench.cpu_profile import CpuPhase, CpuSampler, Scope
from bench.own_node import cassandra_node, node_env
from devtools import cluster
from jobs.lib.metrics import S3_OPERATIONS
from tests.imagehosts import ImageHost
from tests.imitations.server import SearchImitation
from tests.mailserver import MailServer, free_port
from tests.metrics_reader import scrape, total
from tests.web_client import WebClient

ROOT = Path(__file__).resolve().parent.parent

BENCH_ROOT = ROOT / "var" / "bench-scale"
HOSTS = [f"127.0.0.{n}" for n in range(71, 79)]
IMITATION = "127.0.0.79"
RESULTS = ROOT / "var" / "bench-scale-results.json"  # outside BENCH_ROOT, which each run wipes
SCOPE = Scope(os.getpid(), str(BENCH_ROOT).encode())
STATEMENT_KINDS = ("read", "write", "batch", "lwt")
IMITATIONS = "bench (image hosts, imitation, mail)"
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


# --- (a) jobs per minute, and what a job costs ---------------------------------------------


def statements(urls: list[str]) -> dict[str, float]:
    """Cassandra requests so far by kind, added up over the servers at ``urls``."""
    samples = [scrape(url) for url in urls]
    return {
        kind: sum(total(s, "imagedl_cassandra_statements_total", kind=kind) for s in samples)
        for kind in STATEMENT_KINDS
    }


def s3_requests(urls: list[str]) -> dict[str, float]:
    """S3 requests so far by operation, and the bytes sent, added up over the servers at
    ``urls`` (imagedl_s3_requests: a server before it had the metric counts none)."""
    samples = [scrape(url) for url in urls]
    counts = {
        operation: sum(total(s, "imagedl_s3_requests_total", operation=operation) for s in samples)
        for operation in S3_OPERATIONS
    }
    counts["MB sent"] = sum(total(s, "imagedl_s3_bytes_sent_total") for s in samples) / 1e6
    return counts


def run_seconds(urls: list[str]) -> tuple[float, float]:
    """(sum, count) of the finished runs' seconds, added up over the workers at ``urls``."""
    samples = [scrape(url) for url in urls]
    return (
        sum(total(s, "imagedl_job_run_seconds_sum") for s in samples),
        sum(total(s, "imagedl_job_run_seconds_count") for s in samples),
    )


def idle_phase(seconds: float) -> dict:
    """What the stack spends doing nothing for ``seconds`` (its node's housekeeping, the
    scheduler's and the reaper's polls): a cost of the time, not of the jobs."""
    with CpuSampler(scope=SCOPE) as sampler:
        time.sleep(seconds)
    return {"seconds": seconds, "cpu": sampler.phase}


def difference(after: dict[str, float], before: dict[str, float], per: int) -> dict[str, float]:
    return {kind: (after[kind] - before[kind]) / max(per, 1) for kind in after}


def jobs_phase(
    webs: list[str],
    metrics: dict[str, list[str]],
    mail: MailServer,
    args: argparse.Namespace,
    tag: str,
    jobs: int | None = None,
    at_once: bool = True,
) -> dict:
    """``jobs`` jobs (``args.jobs``) submitted at once, or each after the last one's
    "ready" mail: jobs per minute from the first submission to the last "ready" mail,
    where the CPU went, and what was asked of Cassandra."""
    jobs = jobs or args.jobs
    emails = [f"{tag}-{i}@example.org" for i in range(jobs)]
    clients = [WebClient(web) for web in webs]
    worker_before = statements(metrics["worker"])
    s3_before = s3_requests(metrics["worker"] + metrics["web"])
    runs_before = run_seconds(metrics["worker"])
    submitted = dict.fromkeys(STATEMENT_KINDS, 0.0)
    paths = []
    with CpuSampler(scope=SCOPE) as sampler:
        started = time.monotonic()
        for group in [emails] if at_once else [[e] for e in emails]:
            before = statements(metrics["web"])
            paths += [clients[len(paths) % len(clients)].submit_ok(e, args.images) for e in group]
            after = statements(metrics["web"])
            submitted = {kind: submitted[kind] + after[kind] - before[kind] for kind in STATEMENT_KINDS}
            if not wait_ready(mail, group, timeout=60 * 60):
                raise SystemExit(f"{tag}: not every one of {jobs} jobs delivered within an hour")
        minutes = (time.monotonic() - started) / 60
    delivered = sum(int(clients[i % len(clients)].state(p).get("downloaded", 0)) for i, p in enumerate(paths))
    worker_after = statements(metrics["worker"])
    s3_after = s3_requests(metrics["worker"] + metrics["web"])
    runs_after = run_seconds(metrics["worker"])
    runs = runs_after[1] - runs_before[1]
    return {
        "tag": tag,
        "at_once": at_once,
        "jobs_per_minute": jobs / minutes,
        "cpu": sampler.phase,
        "jobs": jobs,
        "images": args.images,
        "delivered": delivered,
        "mails_per_job": sum(len(mail.messages_to(e)) for e in emails) / jobs,
        "per_submission": {kind: value / jobs for kind, value in submitted.items()},
        "per_job": difference(worker_after, worker_before, jobs),
        "s3_per_job": difference(s3_after, s3_before, jobs),
        # a run's own time (first start to its end, imagedl_job_run_seconds): how long a
        # task process is held, without the queue's and the mail's waits
        "run_seconds": (runs_after[0] - runs_before[0]) / runs if runs else None,
    }


def cost_lines(row: dict) -> list[str]:
    """CPU per job and per delivered image by kind, and Cassandra requests per job."""
    phase: CpuPhase = row["cpu"]
    app = {kind: seconds for kind, seconds in phase.per_kind.items() if kind != IMITATIONS}
    images = max(row["delivered"], 1)
    parts = ", ".join(
        f"{kind} {seconds / row['jobs']:.2f} s ({seconds / images * 1000:.1f} ms)"
        for kind, seconds in sorted(app.items(), key=lambda item: -item[1])
        if seconds >= 0.005 * phase.busy
    )
    whole = sum(app.values())
    return [
        f"    {row['jobs']} jobs, {row['delivered']} images delivered, {row['jobs_per_minute']:.2f} jobs/min; "
        f"machine {phase.busy / max(phase.total, 1e-9):.0%} busy",
        f"    CPU per job (per image): all but the imitations {whole / row['jobs']:.2f} s "
        f"({whole / images * 1000:.1f} ms); {parts}; imitations {phase.per_kind.get(IMITATIONS, 0.0) / row['jobs']:.2f} s",
        f"    Cassandra requests per job run: {counts_text(row['per_job'])}; per submission: {counts_text(row['per_submission'])}",
        f"    S3 requests per job (workers and webs): {s3_text(row.get('s3_per_job', {}))}",
    ]


def s3_text(counts: dict[str, float]) -> str:
    sent = {op: n for op, n in counts.items() if n and op != "MB sent"}
    if not sent:
        return "none counted (local disk, or servers without imagedl_s3_requests)"
    return (
        ", ".join(f"{op} {n:.1f}" for op, n in sorted(sent.items(), key=lambda item: -item[1]))
        + f" (all {sum(sent.values()):.1f}); {counts.get('MB sent', 0):.2f} MB sent"
    )


def counts_text(counts: dict[str, float]) -> str:
    if not any(counts.values()):
        return "n/a (the servers do not count them)"
    return (
        ", ".join(f"{kind} {value:.1f}" for kind, value in counts.items())
        + f" (all {sum(counts.values()):.1f})"
    )


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
    with CpuSampler(scope=SCOPE) as sampler:
        times, wall, paths = timed_submissions(webs, args.submissions, args.concurrency)
    cpu = sampler.table()
    with CpuSampler(scope=SCOPE) as reading:
        reads, read_wall, states = timed_status_reads(paths, args.concurrency)
    scheduled_states = sum(1 for s in states if s.get("status") == "scheduled")
    answer = run([sys.executable, "manage.py", "shell", "-v0", "-c", SCHEDULED_JOBS], env=env)
    schedules = int(answer.strip().splitlines()[-1])
    return {
        "stack": name,
        "submissions": len(times),
        "cpu_phase": sampler.phase,
        "status_reads": len(reads),
        "status_cpu": reading.phase,
        "submissions_per_s": len(times) / wall,
        "submit_p50_ms": statistics.median(times) * 1000,
        "submit_p99_ms": percentile(times, 99) * 1000,
        "status_per_s": len(reads) / read_wall,
        "status_p50_ms": statistics.median(reads) * 1000,
        "status_p99_ms": percentile(reads, 99) * 1000,
        "stored_and_scheduled": f"{scheduled_states}/{len(times)} scheduled, {schedules} schedules",
        "cpu": cpu,
    }


class DefaultStack:
    """`make run` in a folder of its own: a Cassandra node (RF 1), SQLite, the file
    cache, local disk, and `devtools.run_all` (one worker, one gunicorn)."""

    def __init__(self, base_env: dict[str, str], web_workers: int) -> None:
        folder = BENCH_ROOT / "default"
        folder.mkdir(parents=True, exist_ok=True)
        self.env = {**node_env(folder, "imagedl_bench_scale"), **base_env}
        self.env.update(
            IMAGEDL_WORKER_METRICS_PORT=str(free_port()), CASSANDRA_REPLICATION="SimpleStrategy:1"
        )
        self.port, self.web_workers, self.process = free_port(), web_workers, None
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics = {
            "web": [f"{self.url}/metrics"],
            "worker": [f"http://127.0.0.1:{self.env['IMAGEDL_WORKER_METRICS_PORT']}/metrics"],
        }

    def start(self) -> DefaultStack:
        cassandra_node(self.env, "start")
        for command in ("migrate --noinput", "sync_cassandra", "ensure_storage", "collectstatic --noinput"):
            run([sys.executable, "manage.py", *command.split(), "-v0"], env=self.env)  # as `make setup`
        log = (BENCH_ROOT / "default" / "run_all.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devtools.run_all",
                "--port",
                str(self.port),
                "--web-workers",
                str(self.web_workers),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while not all(scrape(url) for urls in self.metrics.values() for url in urls):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"the make-run stack did not come up: see {log.name}")
            time.sleep(0.5)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        cassandra_node(self.env, "stop")


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


def default_run(imitation: SearchImitation, mail: MailServer, args: argparse.Namespace) -> dict:
    stack = DefaultStack(cluster_environment(imitation, mail), args.default_web_workers).start()
    try:
        idle = idle_phase(args.idle)
        print(f"(a) default stack idle for {args.idle:g} s: {idle['cpu'].table()}", flush=True)
        alone = jobs_phase([stack.url], stack.metrics, mail, args, "alone", jobs=args.alone, at_once=False)
        print(
            f"(a) default stack (make run), {args.alone} jobs of {args.images} images one after another:",
            flush=True,
        )
        print("\n".join(cost_lines(alone)), flush=True)
        jobs = jobs_phase([stack.url], stack.metrics, mail, args, "default")
        print(f"    then {args.jobs} jobs of {args.images} images at once:", flush=True)
        print("\n".join(cost_lines(jobs)), flush=True)
        web = web_tier(
            f"default (SQLite, file cache), {args.default_web_workers} processes",
            [stack.url],
            stack.env,
            args,
        )
    finally:
        stack.stop()
    return {
        "jobs": [alone, jobs],
        "idle": idle,
        "web": web,
        "q_workers": int(stack.env.get("IMAGEDL_Q_WORKERS", "2")),
    }


def cluster_run(imitation: SearchImitation, mail: MailServer, args: argparse.Namespace) -> dict:
    root = BENCH_ROOT / "cluster"
    t0 = time.monotonic()
    info = json.loads(
        run(
            [sys.executable, "-m", "devtools.cluster", "up", "--free-ports", "--root", str(root)],
            env=cluster_environment(imitation, mail),
        ).splitlines()[-1]
    )
    up_seconds = time.monotonic() - t0
    try:
        layout = cluster.Layout.load(root)
        webs = info["web"]
        metrics = {
            "web": [f"{web}/metrics" for web in webs],
            "worker": [f"http://127.0.0.1:{layout.worker_metrics_port(n)}/metrics" for n in info["workers"]],
        }
        print(
            f"(c) cluster up from nothing: {up_seconds:.1f} s (up's own figure: {info['seconds']} s)",
            flush=True,
        )
        cluster_cli("kill", "worker-2")
        one = jobs_phase(webs, metrics, mail, args, "one")
        print(f"(a) cluster, {args.jobs} jobs of {args.images} images at once, one worker:", flush=True)
        print("\n".join(cost_lines(one)), flush=True)
        cluster_cli("start", "worker-2")
        two = jobs_phase(webs, metrics, mail, args, "two")
        ratio = two["jobs_per_minute"] / one["jobs_per_minute"]
        print(f"    two workers: {ratio:.2f}x one worker's jobs/min (target >= 1.6x)", flush=True)
        print("\n".join(cost_lines(two)), flush=True)
        for name in info["workers"]:
            cluster_cli("kill", name)
        web = web_tier("PostgreSQL + Redis, 2 webs", webs, layout.app_env("setup"), args)
    finally:
        if not args.keep:
            cluster_cli("down")
    q_workers = int(layout.app_env("worker-1").get("IMAGEDL_Q_WORKERS", "2"))
    return {"jobs": [one, two], "web": web, "q_workers": q_workers, "workers": len(info["workers"])}


def web_lines(rows: list[dict], args: argparse.Namespace) -> list[str]:
    lines = [f"(b) {args.submissions} submissions, concurrency {args.concurrency}:"]
    for row in rows:
        lines.append(
            f"    {row['stack']:<44} submit {row['submissions_per_s']:7.1f}/s  p50 {row['submit_p50_ms']:6.1f} ms"
            f"  p99 {row['submit_p99_ms']:7.1f} ms | status {row['status_per_s']:7.1f}/s"
            f"  p50 {row['status_p50_ms']:5.1f} ms  p99 {row['status_p99_ms']:6.1f} ms | {row['stored_and_scheduled']}"
        )
    lines += [f"    CPU while submitting, {row['stack']}: {row['cpu']}" for row in rows]
    if len(rows) == 2:
        ratio = rows[1]["submissions_per_s"] / rows[0]["submissions_per_s"]
        lines.append(
            f"    submissions on PostgreSQL + Redis: {ratio:.2f}x the default's (target >= 1.5x, lower p99)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", default="default,cluster", help="default, cluster or both")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument(
        "--alone", type=int, default=3, help="jobs run one after another first (default stack)"
    )
    parser.add_argument(
        "--idle", type=float, default=20, help="seconds the default stack is watched idle first"
    )
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--submissions", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--default-web-workers", type=int, default=3, help="gunicorn processes (make run: 3)")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args()
    stacks = {name.strip() for name in args.stacks.split(",")}

    hosts, imitation, mail = start_servers(args.latency)
    if (BENCH_ROOT / "cluster" / "cluster.json").exists():
        cluster_cli("down")
    shutil.rmtree(BENCH_ROOT, ignore_errors=True)
    results = {}
    try:
        if "default" in stacks:
            results["default"] = default_run(imitation, mail, args)
        if "cluster" in stacks:
            results["cluster"] = cluster_run(imitation, mail, args)
    finally:
        for server in (*hosts, imitation, mail):
            server.stop()
    print("\n".join(web_lines([r["web"] for r in results.values()], args)))
    RESULTS.write_text(json.dumps({"cores": os.cpu_count(), "stacks": results}, default=_plain, indent=1))
    print(f"figures for bench.capacity: {RESULTS}")


def _plain(value: object) -> object:
    if isinstance(value, CpuPhase):
        return {"busy": value.busy, "total": value.total, "per_kind": value.per_kind}
    raise TypeError(type(value))


if __name__ == "__main__":
    main()
