"""The Cassandra statements of a job's run, by kind and table, and its CPU.

Runs --jobs jobs of --images images one after the other in this process, each as the
worker runs it (``jobs.core.run.job_run``: claim, search, download, the run's writes,
archive, outcome), against the imitations: the Bing imitation (127.0.0.119, async
batches of 35 at 300 ms) and 8 image hosts (127.0.0.111-118, --latency) serving the
realistic corpus (bench/corpus.py), one result in ten an HTML page (rejected). Every
request the driver sends while ``job_run`` runs is counted (``tests.statements``, the
driver's request listener): plain reads, plain writes, lightweight transactions and
batches, by table. The submission (``job_submit``) and the mails' own tasks are not
counted. CPU: user+sys seconds of this process (the run's Python threads; Chromium's
processes are its children and not counted) and of the Cassandra node's JVM, read
from /proc before and after each job (and the node's idle rate over 10 s before).

    .venv/bin/python -m bench.statements [--jobs 3] [--images 50]

Starts a node of its own in bench/out/statements/ (stopped at the end), unless
--node-from-env: then the node and keyspace of CASSANDRA_HOSTS, CASSANDRA_PORT,
CASSANDRA_KEYSPACE and IMAGEDL_CASSANDRA_DATA (to find the node's pid) are used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import time
from pathlib import Path

from bench.corpus import realistic_corpus
from bench.own_node import ROOT, cassandra_node, node_env, node_ready
from tests.imagehosts import ImageHost
from tests.imitations import SearchImitation
from tests.statements import KINDS, StatementCount

HOSTS = [f"127.0.0.{n}" for n in range(111, 119)]
IMITATION = "127.0.0.119"
OUT = ROOT / "bench" / "out" / "statements"


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def node_cpu(pid: int | None) -> float:
    """User+sys seconds of the node's JVM (0 when its pid is unknown)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_pid() -> int | None:
    pid_file = Path(os.environ.get("IMAGEDL_CASSANDRA_DATA", "")) / "node1" / "cassandra.pid"
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def node_idle(pid: int | None, seconds: float = 10.0) -> float:
    """The node's CPU seconds per second while nothing uses it (its own background work)."""
    before = node_cpu(pid)
    time.sleep(seconds)
    return (node_cpu(pid) - before) / seconds


def start_servers(latency: float, images: int) -> tuple[list[ImageHost], SearchImitation]:
    folder, items = realistic_corpus(300)
    hosts = [ImageHost(a, latency=latency, files=folder).start() for a in HOSTS]

    def image_url(index: int) -> str:
        host = hosts[index % len(hosts)]
        if index % 10 == 0:
            return host.url(f"/html.jpg?i={index}")
        return host.url(f"/file/{items[(index - 1) % len(items)].name}")

    imitation = SearchImitation(IMITATION, image_url=image_url, total=images * 3, batch_latency=0.3)
    return hosts, imitation.start()


def one_job(images: int, pid: int | None) -> tuple[StatementCount, str, float, float, float]:
    """(statements, outcome, wall, own CPU, node CPU) of one job's run."""
    from jobs.core import services
    from jobs.core.run import job_run
    from jobs.store import records

    job = services.job_submit(
        email="bench@example.org",
        query="red fox",
        requested_count=images,
        run_at=dt.datetime.now(dt.UTC),
        time_zone="UTC",
    )  # (its run task waits in the SQLite queue: no worker runs here)
    cpu, node, began = own_cpu(), node_cpu(pid), time.monotonic()
    with StatementCount() as count:
        outcome = job_run(job.id)
    wall, cpu, node = time.monotonic() - began, own_cpu() - cpu, node_cpu(pid) - node
    services.job_purge(records.job_get(job.id), by="bench")
    return count, outcome, wall, cpu, node


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--node-from-env", action="store_true")
    args = parser.parse_args()
    env = None
    if args.node_from_env:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagedl_site.settings")
        os.environ.setdefault("IMAGEDL_LOG_LEVEL", "WARNING")
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("sync_cassandra", verbosity=0)
    else:
        env = node_env(OUT, "bench_statements")
        node_ready(OUT, env)
    from django.conf import settings

    hosts, imitation = start_servers(args.latency, args.images)
    settings.IMAGEDL_ALLOW_PRIVATE_NETWORKS = True
    settings.IMAGEDL_DOWNLOAD_CONCURRENCY = settings.IMAGEDL_PER_HOST_CONNECTIONS * len(hosts)
    for name, value in imitation.engine_settings(3.0).items():
        setattr(settings, name, value)
    pid = node_pid()
    idle = node_idle(pid)
    try:
        runs = [one_job(args.images, pid) for _ in range(args.jobs)]
    finally:
        imitation.stop()
        for host in hosts:
            host.stop()
        if env is not None:
            from jobs.store.cassandra import session

            session().cluster.shutdown()  # before its node goes: no reconnection attempts
            cassandra_node(env, "stop")
    first = runs[0][0]
    print(f"{args.jobs} jobs of {args.images} images; the first job's statements:")
    print(first.table())
    print(f"outcomes: {', '.join(run[1] for run in runs)}")
    for kind in KINDS:
        print(f"{kind:<6} per job: {spread([run[0].by_kind()[kind] for run in runs])}")
    print(f"all    per job: {spread([run[0].total for run in runs])}")
    print(f"wall s per job: {spread([run[2] for run in runs])}")
    print(f"CPU s per job, this process (run threads): {spread([run[3] for run in runs])}")
    if pid is not None:
        print(f"CPU s per job, Cassandra node: {spread([run[4] for run in runs])}")
        print(f"  (the idle node used {idle:.3f} CPU s per s, measured over 10 s before the jobs)")


if __name__ == "__main__":
    main()
