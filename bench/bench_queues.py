"""The queue tables under a day's churn: no tombstone trouble, each pass under a second.

50,000 jobs' worth (by default) of queue rows, their due times spread over the last
24 hours, are written and deleted as the application does: per job one ``job_active``
row (by its run time), three ``mail_pending`` rows (accepted, started, ready) and one
``job_purge_due`` row, each in the partition its layout gives it. Then one reaper pass
(its ``job_active`` and ``mail_pending`` halves) and one purge pass run, three times
each, and the benchmark prints:

  churn              rows written and deleted, and how long it took
  reaper / mail / purge pass   the slowest of three passes, in ms (target: under 1 s)
  node log           tombstone warnings and failures the passes caused

``--layout single`` puts every row in the one partition ``all`` of earlier versions,
for comparison (the mail pass then fails on Cassandra's 100,000-tombstone limit).

    .venv/bin/python -m bench.bench_queues [--jobs 50000] [--layout buckets|single]

Everything is its own: a Cassandra node on free ports with its data in
var/bench-queues/cassandra (keyspace bench_queues), wiped at the start and stopped at
the end; the project's node on 127.0.0.1:9042 is not touched.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import re
import time
import uuid
from pathlib import Path

from bench.own_node import ROOT, cassandra_node, node_env, node_ready

OUT = ROOT / "var" / "bench-queues"
KEYSPACE = "bench_queues"
MAIL_KINDS = ("accepted", "started", "ready")


def churn(jobs: int, single: bool) -> tuple[int, float]:
    """Write then delete ``jobs`` jobs' queue rows; how many rows, and the seconds."""
    from cassandra.concurrent import execute_concurrent_with_args

    from jobs.models import JobActive, JobPurgeDue, MailPending
    from jobs.store.cassandra import prepared, session
    from jobs.store.queues import bucket_of

    now = dt.datetime.now(dt.UTC)
    statements = {
        "job_active": ("(bucket, job_id) VALUES (?, ?)", "bucket = ? AND job_id = ?"),
        "mail_pending": (
            "(bucket, job_id, generation, kind) VALUES (?, ?, 1, ?)",
            "bucket = ? AND job_id = ? AND generation = 1 AND kind = ?",
        ),
        "job_purge_due": (
            "(bucket, due_at, job_id) VALUES (?, ?, ?)",
            "bucket = ? AND due_at = ? AND job_id = ?",
        ),
    }
    rows: dict[str, list[tuple]] = {table: [] for table in statements}
    for n in range(jobs):
        run_at = now - dt.timedelta(seconds=86400 * n / jobs)
        job_id = uuid.uuid4()
        due = run_at + dt.timedelta(minutes=30)
        rows["job_active"].append(("all" if single else bucket_of(run_at), job_id))
        for kind in MAIL_KINDS:
            rows["mail_pending"].append(("all" if single else bucket_of(run_at), job_id, kind))
        rows["job_purge_due"].append(("all" if single else bucket_of(due), due.replace(tzinfo=None), job_id))
    began = time.monotonic()
    current = session()
    models = {"job_active": JobActive, "mail_pending": MailPending, "job_purge_due": JobPurgeDue}
    for table, (insert, where) in statements.items():
        name = models[table].column_family_name()
        add = prepared(f"INSERT INTO {name} {insert}")
        drop = prepared(f"DELETE FROM {name} WHERE {where}")
        for statement in (add, drop):
            results = execute_concurrent_with_args(current, statement, rows[table], concurrency=64)
            failed = [result for ok, result in results if not ok]
            if failed:
                raise RuntimeError(f"{table}: {len(failed)} writes failed, e.g. {failed[0]!r}")
    return 2 * sum(len(r) for r in rows.values()), time.monotonic() - began


def slowest_of_three(name: str, run) -> float:
    times = []
    for _ in range(3):
        began = time.monotonic()
        try:
            run()
        except Exception as exc:
            print(f"  {name} pass failed: {type(exc).__name__}: {str(exc)[:160]}", flush=True)
            return float("inf")
        times.append(time.monotonic() - began)
    return max(times)


def passes() -> dict[str, float]:
    from jobs.core import reaper, services
    from jobs.models import JobActive, MailPending
    from jobs.store.queues import queue_buckets

    def active_half() -> None:
        now = dt.datetime.now(dt.UTC)
        for bucket in queue_buckets(reaper.ACTIVE_QUEUE, now, now=now):
            list(JobActive.objects.filter(bucket=bucket).limit(None))

    def mail_half() -> None:
        now = dt.datetime.now(dt.UTC)
        for bucket in queue_buckets(reaper.MAIL_QUEUE, now, now=now):
            list(MailPending.objects.filter(bucket=bucket).limit(None))

    return {
        "reaper pass (job_active)": slowest_of_three("reaper", active_half),
        "mail pass (mail_pending)": slowest_of_three("mail", mail_half),
        "whole reaper pass": slowest_of_three("whole reaper", reaper.jobs_reap),
        "purge pass (job_purge_due)": slowest_of_three("purge", services.jobs_purge_due),
    }


def log_findings(log: Path, start: int) -> list[str]:
    text = log.read_text(errors="replace")[start:] if log.exists() else ""
    pattern = re.compile(r"tombstone|TombstoneOverwhelming", re.IGNORECASE)
    return [line.strip()[:200] for line in text.splitlines() if pattern.search(line)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--layout", choices=("buckets", "single"), default="buckets")
    args = parser.parse_args()
    env = node_env(OUT, KEYSPACE, CASSANDRA_QUERY_TIMEOUT="30")
    try:
        node_ready(OUT, env)
        log = OUT / "cassandra" / "node1" / "logs" / "system.log"
        rows, seconds = churn(args.jobs, args.layout == "single")
        print(
            f"layout {args.layout}: {args.jobs} jobs' queue churn, {rows} rows written and deleted in {seconds:.0f} s"
        )
        mark = log.stat().st_size if log.exists() else 0
        for name, slowest in passes().items():
            verdict = "ok" if slowest < 1 else "OVER 1 s"
            print(f"  {name:<28} slowest of 3: {slowest * 1000:8.0f} ms  {verdict}")
        findings = log_findings(log, mark)
        print(f"  node log: {len(findings)} tombstone warnings or failures during the passes")
        for line in findings[:5]:
            print(f"    {line}")
    finally:
        with contextlib.suppress(Exception):
            cassandra_node(env, "stop")


if __name__ == "__main__":
    main()
