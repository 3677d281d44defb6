"""Jobs delivered exactly once while workers die, tasks repeat and Cassandra restarts.

40 jobs (10-30 images each, by default) over two worker processes (`manage.py
qcluster`, django-q2, each with IMAGEDL_Q_WORKERS processes) against the local search
imitation (127.0.0.90) and 4 image hosts (127.0.0.91-94), while faults come on a
timetable (seconds after the first submission):

  kill      SIGKILL a worker's whole process group (the cluster, its django-q2
            processes and their Chromium), preferring one with a browser running, and
            start a replacement; three times
  copies    enqueue copies of random run and mail tasks already handed out (same
            func and args, read back from django-q2's task and queue tables)
  cassandra stop the Cassandra node (SIGTERM), start it again --outage seconds later

Then it waits (at most --deadline seconds after the first submission) until every job
is finished and its outcome mail arrived, and --settle seconds more for late copies,
and prints the timetable as it happened and:

  delivered exactly once   status done, one archive under MEDIA_ROOT/archives, one "ready" mail,
                           and the archive opened: it reads back whole (CRCs), holds as many
                           images as were asked for, each decoding with Pillow, none twice
                           (sha256), one manifest row each
  failed, with a mail      status failed and a "failed" mail
  lost                     still active at the deadline, or finished without its mail
  duplicate mails          mails of a (job, kind) received more than once
  slowest delivery         submission to the "ready" mail

Target: every job delivered exactly once, 0 lost, 0 duplicate mails. The benchmark
prints whether it was met (its exit status is 0 either way).

    .venv/bin/python -m bench.bench_chaos [--jobs 40] [--seed 1] [--q-workers 2]

Everything is its own: a Cassandra node on free ports with its data in
var/bench-chaos/cassandra (keyspace bench_chaos), SQLite, media, cache and logs in
var/bench-chaos/ (wiped at the start, kept after the run for reading), an SMTP server
(aiosmtpd) on a free port. The project's node on 127.0.0.1:9042 is not touched.
Recovery settings: IMAGEDL_LEASE_SECONDS=9, IMAGEDL_REAPER_EVERY_MINUTES=1,
IMAGEDL_REAPER_GRACE_SECONDS=15, IMAGEDL_TRANSIENT_BACKOFF_SECONDS=2.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import hashlib
import io
import logging
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.own_node import ROOT, cassandra_node, node_env, node_ready
from tests.imagehosts import ImageHost, encoded
from tests.imitations import SearchImitation
from tests.mailserver import MailServer, _Collector

OUT = ROOT / "var" / "bench-chaos"
IMITATION = "127.0.0.90"
HOSTS = [f"127.0.0.{n}" for n in range(91, 95)]
KEYSPACE = "bench_chaos"
SUBJECT_KINDS = {
    "is scheduled": "accepted",
    "has started": "started",
    "are ready": "ready",
    "could not finish": "failed",
}
OUTCOME_MAIL = {"done": "ready", "failed": "failed"}


# --- the environment every process shares ----------------------------------------------


def bench_env(mail_port: int, q_workers: int) -> dict[str, str]:
    return node_env(
        OUT,
        KEYSPACE,
        PYTHONUNBUFFERED="1",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(mail_port),
        EMAIL_TIMEOUT="5",
        IMAGEDL_EMAIL_RETRY_SECONDS="5",
        IMAGEDL_BASE_URL="http://127.0.0.1:8000",
        IMAGEDL_ALLOW_PRIVATE_NETWORKS="true",
        IMAGEDL_BROWSER_LOOPBACK_ONLY="true",
        IMAGEDL_Q_WORKERS=str(q_workers),
        IMAGEDL_LEASE_SECONDS="9",
        IMAGEDL_REAPER_EVERY_MINUTES="1",
        IMAGEDL_REAPER_GRACE_SECONDS="15",
        IMAGEDL_TRANSIENT_BACKOFF_SECONDS="2",
        IMAGEDL_RETENTION_MINUTES="600",  # nothing is purged while it is counted
        IMAGEDL_LOG_LEVEL="INFO",
    )


def quiet(server: object) -> None:
    """No traceback on stderr for a connection a killed worker left half-open."""
    server._server.handle_error = lambda request, client_address: None  # type: ignore[attr-defined]


def leftover_browsers(workers: list[Worker]) -> int:
    """Chromium and chromedriver processes started by this benchmark's workers (each in
    its own process group, which the browser keeps; its environment is an allow-list,
    so it carries no mark) whose worker is gone: left behind by a killed one."""
    dead = {w.proc.pid for w in workers if w.proc.poll() is not None}
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if name.startswith("chrom") and fields[0] not in ("Z", "X") and int(fields[2]) in dead:
            count += 1
    return count


# --- mails, timed ---------------------------------------------------------------------


@dataclass
class Mail:
    at: float  # time.monotonic() when received
    to: str
    kind: str


class TimedMailServer(MailServer):
    """tests.mailserver.MailServer that also notes when each message arrived."""

    def start(self) -> TimedMailServer:
        from aiosmtpd.controller import Controller

        self.mails: list[Mail] = []
        server = self

        class Timed(_Collector):
            async def handle_DATA(self, smtp, session, envelope):
                answer = await super().handle_DATA(smtp, session, envelope)
                message = server.inbox[-1]
                subject = str(message["Subject"])
                kind = next((k for words, k in SUBJECT_KINDS.items() if words in subject), "other")
                server.mails.append(Mail(time.monotonic(), str(message["To"]), kind))
                return answer

        self._controller = Controller(
            Timed(self.inbox, self._lock, self.refuse), hostname=self.host, port=self.port
        )
        self._controller.start()
        return self


# --- workers --------------------------------------------------------------------------


@dataclass
class Worker:
    number: int
    proc: subprocess.Popen
    log: Path


def start_worker(number: int, env: dict[str, str]) -> Worker:
    log = OUT / f"worker-{number}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg reaches its Chromium too
        )
    return Worker(number, proc, log)


def group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, name) of every process in the process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
            members.append((int(entry.name), name))
    return members


def browsers(pgid: int) -> int:
    return sum(1 for _, name in group_members(pgid) if name == "chromedriver")


def stop_worker(worker: Worker) -> None:
    if worker.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.proc.pid, signal.SIGTERM)
        try:
            worker.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):  # what is left of the group
        os.killpg(worker.proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        worker.proc.wait(10)


# --- the run --------------------------------------------------------------------------


@dataclass
class Chaos:
    env: dict[str, str]
    rng: random.Random
    started: float = 0.0
    workers: list[Worker] = field(default_factory=list)
    all_workers: list[Worker] = field(default_factory=list)  # killed ones too
    timetable: list[tuple[float, str]] = field(default_factory=list)
    copies: int = 0
    next_worker: int = 1

    def note(self, text: str) -> None:
        at = time.monotonic() - self.started
        self.timetable.append((at, text))
        print(f"  {at:6.1f} s  {text}", flush=True)

    def add_worker(self) -> Worker:
        worker = start_worker(self.next_worker, self.env)
        self.next_worker += 1
        self.workers.append(worker)
        self.all_workers.append(worker)
        return worker

    def until_busy(self, browsers_running: int, timeout: float = 30) -> None:
        """Wait (at most ``timeout``) until jobs are running: a fault then hits work in
        progress rather than idle workers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(browsers(w.proc.pid) for w in self.workers if w.proc.poll() is None) >= browsers_running:
                return
            time.sleep(0.5)

    def kill_worker(self) -> None:
        self.until_busy(1)
        alive = [w for w in self.workers if w.proc.poll() is None]
        busy = [w for w in alive if browsers(w.proc.pid)]
        victim = self.rng.choice(busy or alive)
        members = group_members(victim.proc.pid)
        running = browsers(victim.proc.pid)
        os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()
        self.workers.remove(victim)
        new = self.add_worker()
        self.note(
            f"SIGKILL worker {victim.number} (process group {victim.proc.pid}: {len(members)} processes, "
            f"{running} browsers); worker {new.number} started"
        )

    def copy_tasks(self, count: int) -> None:
        from django_q.models import OrmQ, Task
        from django_q.tasks import async_task

        from jobs.lib import scheduling

        funcs = (scheduling.RUN_TASK, scheduling.EMAIL_TASK)
        seen = {(t.func, tuple(t.args or ())) for t in Task.objects.filter(func__in=funcs)}
        for queued in OrmQ.objects.all():
            with contextlib.suppress(Exception):  # a payload that does not decode: skip it
                task = queued.task
                if task["func"] in funcs:
                    seen.add((task["func"], tuple(task["args"])))
        picked = self.rng.sample(sorted(seen, key=repr), min(count, len(seen)))
        for func, args in picked:
            self.copies += 1
            async_task(func, *args, task_name=f"chaos-copy-{self.copies}", group="chaos-copies")
        kinds = Counter("run" if func == scheduling.RUN_TASK else f"mail {args[1]}" for func, args in picked)
        self.note(
            f"copies of {len(picked)} tasks handed out earlier ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})"
        )

    def cassandra_stop(self) -> None:
        self.until_busy(2)
        cassandra_node(self.env, "stop")
        self.note("Cassandra node stopped (SIGTERM, clean shutdown)")

    def cassandra_start(self) -> None:
        begun = time.monotonic()
        self.note("Cassandra node starting")
        cassandra_node(self.env, "start")
        self.note(f"Cassandra node answers again ({time.monotonic() - begun:.0f} s to start)")


@dataclass
class Submitted:
    job_id: uuid.UUID
    email: str
    at: float  # time.monotonic() at submission
    images: int


def image_url_for(hosts: list[ImageHost]):
    def url(index: int) -> str:
        w, h = 400 + (index % 7) * 20, 300 + (index % 5) * 20
        return hosts[index % len(hosts)].url(f"/img/{30_000 + index}.jpeg?w={w}&h={h}&noise=1")

    return url


def submit(jobs: int, rng: random.Random, spread: float) -> list[Submitted]:
    from jobs.core import services

    submitted = []
    now = dt.datetime.now(dt.UTC)
    for n in range(jobs):
        images = rng.randint(10, 30)
        email = f"chaos-{n + 1:03d}@example.org"
        # A quarter of the jobs at a time: now, then every `spread` seconds.
        run_at = now + dt.timedelta(seconds=(n * 4 // jobs) * spread)
        job = services.job_submit(
            email=email, query=f"chaos {n + 1}", requested_count=images, run_at=run_at, time_zone="UTC"
        )
        submitted.append(Submitted(job.id, email, time.monotonic(), images))
    return submitted


def job_states(submitted: list[Submitted]) -> dict[uuid.UUID, object] | None:
    """The job rows, or None while Cassandra does not answer."""
    from jobs.store import records

    try:
        return {s.job_id: records.job_get(s.job_id) for s in submitted}
    except Exception:
        return None


def all_answered(submitted: list[Submitted], mails: list[Mail]) -> bool:
    states = job_states(submitted)
    if states is None:
        return False
    got = {(m.to, m.kind) for m in list(mails)}
    for s in submitted:
        job = states[s.job_id]
        if job is None or job.status not in OUTCOME_MAIL:
            return False
        if (s.email, OUTCOME_MAIL[job.status]) not in got:
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--q-workers", type=int, default=2, help="django-q2 processes per worker")
    parser.add_argument("--latency", type=float, default=0.2, help="image hosts' delay per response (s)")
    parser.add_argument("--spread", type=float, default=40, help="seconds between the four run times")
    parser.add_argument("--outage", type=float, default=30, help="seconds Cassandra stays stopped")
    parser.add_argument("--deadline", type=float, default=900, help="seconds to wait for every job")
    parser.add_argument("--settle", type=float, default=45, help="seconds to wait for late copies after")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    mail = TimedMailServer().start()
    env = bench_env(mail.port, args.q_workers)

    hosts: list[ImageHost] = []
    imitation: SearchImitation | None = None
    chaos = Chaos(env, rng)
    try:
        node_ready(OUT, env)  # the bench's own process logs warnings; workers log INFO
        logging.getLogger("cassandra").setLevel(logging.CRITICAL)  # the outage is on purpose
        from django.conf import settings

        hosts = [ImageHost(address, latency=args.latency).start() for address in HOSTS]
        for index in range(1, 61):  # warm the hosts' image cache
            encoded(30_000 + index, "jpeg", 400 + (index % 7) * 20, 300 + (index % 5) * 20, 85, True, False)
        imitation = SearchImitation(IMITATION, image_url=image_url_for(hosts), total=200, batch_latency=0.1)
        imitation.start()
        for server in (*hosts, imitation):
            quiet(server)
        chaos.env = env = {**env, **{k: str(v) for k, v in imitation.engine_settings(2.0).items()}}
        for _ in range(2):
            chaos.add_worker()
        time.sleep(3)  # let the clusters come up

        print(
            f"{args.jobs} jobs, 10-30 images each, over 2 workers x {args.q_workers} django-q2 processes; "
            f"image hosts at {args.latency * 1000:.0f} ms; lease {settings.IMAGEDL_LEASE_SECONDS} s, "
            f"reaper every {settings.IMAGEDL_REAPER_EVERY_MINUTES} min (grace {settings.IMAGEDL_REAPER_GRACE_SECONDS} s)",
            flush=True,
        )
        print("fault timetable (seconds after the first submission):", flush=True)
        chaos.started = time.monotonic()
        submitted = submit(args.jobs, rng, args.spread)
        chaos.note(
            f"{len(submitted)} jobs submitted ({sum(s.images for s in submitted)} images); a quarter run "
            f"now, then every {args.spread:.0f} s"
        )
        # (at least this many seconds after the first submission, and after the fault before)
        timetable = [
            (15, 0, chaos.kill_worker),
            (30, 0, lambda: chaos.copy_tasks(8)),
            (45, 0, chaos.cassandra_stop),
            (0, args.outage, chaos.cassandra_start),
            (0, 10, lambda: chaos.copy_tasks(8)),
            (0, 20, chaos.kill_worker),
            (0, 15, lambda: chaos.copy_tasks(8)),
            (0, 20, chaos.kill_worker),
            (0, 20, lambda: chaos.copy_tasks(8)),
        ]
        last = 0.0
        for at, gap, action in timetable:
            when = max(at, last + gap)
            while time.monotonic() - chaos.started < when:
                time.sleep(0.5)
            action()
            last = time.monotonic() - chaos.started

        deadline = chaos.started + args.deadline
        while time.monotonic() < deadline and not all_answered(submitted, mail.mails):
            time.sleep(2)
        finished = time.monotonic()
        chaos.note(
            "every job finished with its mail"
            if finished < deadline
            else "deadline reached with jobs still unanswered"
        )
        time.sleep(args.settle)
        chaos.note(f"counted after {args.settle:.0f} s more for late copies")
        report(submitted, mail.mails, chaos)
    finally:
        print("stopping the workers, the servers and the Cassandra node", flush=True)
        for worker in chaos.workers:
            stop_worker(worker)
        if imitation is not None:
            imitation.stop()
        for host in hosts:
            host.stop()
        mail.stop()
        with contextlib.suppress(Exception):
            cassandra_node(env, "stop")


def report(submitted: list[Submitted], mails: list[Mail], chaos: Chaos) -> None:
    from django.conf import settings
    from django_q.models import Task

    from jobs.models import JobMail, MailState
    from jobs.store.events import job_events

    states = job_states(submitted) or {}
    received = Counter((m.to, m.kind) for m in mails)
    first_ready = {}
    for m in mails:
        if m.kind == "ready":
            first_ready.setdefault(m.to, m.at)
    archives = Path(settings.MEDIA_ROOT) / "archives"
    exactly_once, failed_with_mail, lost, other = [], [], [], []
    images_delivered = 0
    delays = []
    attempts: Counter[int] = Counter()
    events: Counter[str] = Counter()
    unsent_rows = []
    for s in submitted:
        job = states.get(s.job_id)
        status = job.status if job is not None else "missing"
        attempts[(job.attempts or 0) if job is not None else 0] += 1
        with contextlib.suppress(Exception):
            events.update(e.kind for e in job_events(s.job_id))
            unsent_rows += [
                f"{s.job_id.hex[:8]} {row.kind} {row.state}"
                for row in JobMail.objects.filter(job_id=s.job_id)
                if row.state not in MailState.DONE
            ]
        files = list(archives.glob(f"{s.job_id.hex}*"))
        flaw = archive_flaw(files[0], s.images) if status == "done" and len(files) == 1 else "no archive"
        if status == "done" and not flaw and received[(s.email, "ready")] == 1:
            exactly_once.append(s)
            images_delivered += s.images
        elif status == "failed" and received[(s.email, "failed")] >= 1:
            failed_with_mail.append(s)
        elif (
            status in ("scheduled", "running", "missing")
            or received[(s.email, OUTCOME_MAIL.get(status, "-"))] == 0
        ):
            lost.append((s, status, len(files)))
        else:
            other.append((s, f"{status} ({flaw})" if status == "done" else status, len(files)))
        if s.email in first_ready:
            delays.append(first_ready[s.email] - s.at)
    duplicates = {key: n for key, n in received.items() if n > 1}
    copies = Counter(
        str(t.result).split(":")[0].split(" (")[0]
        for t in Task.objects.filter(name__startswith="chaos-copy-")
    )

    print()
    print(f"jobs submitted          : {len(submitted)}")
    print(
        f"delivered exactly once  : {len(exactly_once)} ({images_delivered} images, every archive opened"
        " and counted against its request)"
    )
    print(f"failed, with a mail     : {len(failed_with_mail)}")
    print(f"lost                    : {len(lost)}")
    for s, status, files in lost:
        print(
            f"    {s.job_id} {s.email}: {status}, {files} archives, mails {dict(_mails_of(s.email, received))}"
        )
    if other:
        print(f"delivered, not once     : {len(other)}")
        for s, status, files in other:
            print(
                f"    {s.job_id} {s.email}: {status}, {files} archives, mails {dict(_mails_of(s.email, received))}"
            )
    extra = sum(n - 1 for n in duplicates.values())
    print(f"duplicate mails         : {extra}" + (f"  {duplicates}" if duplicates else ""))
    if delays:
        print(
            f"slowest delivery        : {max(delays):.1f} s (submission to the 'ready' mail; "
            f"median {statistics.median(delays):.1f} s)"
        )
    print(f"mails received          : {len(mails)} ({dict(sorted(Counter(m.kind for m in mails).items()))})")
    print(f"attempts per job        : {dict(sorted(attempts.items()))}")
    print(
        "recovery events         : "
        + ", ".join(f"{k} {events[k]}" for k in ("requeued", "resumed", "stepped_back", "email_delayed"))
    )
    not_run = chaos.copies - sum(copies.values())
    print(
        f"task copies' results    : {dict(sorted(copies.items()))} ({chaos.copies} enqueued"
        + (f"; {not_run} not run: taken by a killed worker or still queued)" if not_run else ")")
    )
    print(f"browsers left behind    : {leftover_browsers(chaos.all_workers)}")
    if unsent_rows:
        print(f"outbox rows not done    : {unsent_rows}")
    met = len(exactly_once) == len(submitted) and not lost and not duplicates
    print(
        f"target ({len(submitted)} of {len(submitted)} delivered exactly once, 0 lost, 0 duplicate mails): "
        + ("MET" if met else "MISSED")
    )
    print(f"logs: {OUT}/worker-*.log, {OUT}/log/imagedl.log")


def archive_flaw(path: Path, requested: int) -> str:
    """What is wrong with a delivered zip ("" when nothing): it must read back whole,
    hold ``requested`` images that decode and differ, and a manifest row for each."""
    from PIL import Image

    from downloader.manifest import MANIFEST_CSV
    from tests.factories import images_in_archive

    try:
        with zipfile.ZipFile(path) as archive:
            if archive.testzip() is not None:
                return "a member fails its CRC"
            images = images_in_archive(archive.namelist())
            rows = list(csv.DictReader(io.TextIOWrapper(archive.open(MANIFEST_CSV), "utf-8")))
            digests = set()
            for name in images:
                data = archive.read(name)
                digests.add(hashlib.sha256(data).hexdigest())
                with Image.open(io.BytesIO(data)) as image:
                    image.load()
    except (OSError, zipfile.BadZipFile, KeyError, SyntaxError) as exc:
        return f"unreadable: {type(exc).__name__}"
    if len(images) != requested:
        return f"{len(images)} images of {requested} asked"
    if len(digests) != len(images) or len(rows) != len(images):
        return f"{len(digests)} distinct images, {len(rows)} manifest rows, {len(images)} files"
    return ""


def _mails_of(email: str, received: Counter) -> list[tuple[str, int]]:
    return [(kind, n) for (to, kind), n in received.items() if to == email]


if __name__ == "__main__":
    main()
