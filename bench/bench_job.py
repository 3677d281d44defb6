"""A 500-image job end to end against the local imitations, next to its critical path;
then jobs with the worker's browser kept across jobs and without, interleaved.

Bing imitation with async result batches delayed by --batch-latency (default 300 ms,
35 results per batch); 8 image hosts (127.0.0.71-78) with --latency (default 100 ms),
served from a process of their own (so the CPU figures are the worker's and its
browser's only). Measures, each on its own and then as one real job (job_run:
Cassandra bookkeeping, events, archive through storage):

  browser start  a new headless Chromium (sandboxed, fresh profile) until it answers
  fresh context  a new browser context in a running browser (what a kept browser costs
                 a job instead of a start)
  collect URLs   the Bing engine gathering 500 full-size URLs in a fresh context
                 floor: first page + sequential async batches x batch latency
  download       collect_images on those URLs (validate, de-duplicate)
                 floor: ceil(URLs per host / per-host slots) x latency
  pack           write_archive of the kept images
                 floor: writing the same bytes to one file (the disk)
  whole job      job_run in a worker with no browser yet (the first job of a worker)
                 against its critical path: browser start + first page + the search
                 and download pipeline (each URL fetched once its batch is out and a
                 slot of its host is free, at the hosts' latency, no CPU) + pack floor

Then --ab-jobs jobs of --ab-count images each with the browser kept (reuse on,
IMAGEDL_BROWSER_MAX_USES 20) and as many with a browser per job (reuse off, 1),
alternating: wall time and CPU seconds (user+sys) of the worker (this process) and of
its Chromium and chromedriver processes, the first job with reuse on (it starts the
browser) apart from the next ones.

    .venv/bin/python -m bench.bench_job [--count 500] [--corpus simple|realistic] [--ab-jobs 6] [--ab-count 50] [--thumbnails]

``--thumbnails`` shows each result's thumbnail (230x170, on the image hosts) on the
Bing imitation's pages, as the real Bing does, and prints how many the browsers asked
for (a search browser loads no images: none).

``--corpus realistic`` serves the photo-like corpus of bench/corpus.py (300x200 to
4000x3000, mostly JPEG, ~133 KB) instead of the simple 560-680 px JPEGs.

Uses the development keyspace and SQLite file (created if missing).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import django
from django.conf import settings

from bench.audit import Audit
from bench.corpus import realistic_corpus
from tests.imagehosts import ImageHost, encoded
from tests.imitations import SearchImitation

HOSTS = [f"127.0.0.{n}" for n in range(71, 79)]
BATCH = 35  # results on Bing's first page and in each async batch
THUMBNAIL_SEED = 40_000  # thumbnails are /img/4xxxx (results /img/2xxxx)
TICK = os.sysconf("SC_CLK_TCK")


def _serve(args: argparse.Namespace, total: int, conn) -> None:
    """The image hosts and the Bing imitation, in a process of their own, until told."""
    if args.corpus == "realistic":
        folder, items = realistic_corpus(max(total, 2000))
        hosts = [ImageHost(a, latency=args.latency, files=folder).start() for a in HOSTS]

        def image_url(index: int) -> str:
            return hosts[index % len(hosts)].url(f"/file/{items[(index - 1) % len(items)].name}")

    else:
        hosts = [ImageHost(a, latency=args.latency).start() for a in HOSTS]

        def image_url(index: int) -> str:
            w, h = 560 + (index % 7) * 20, 420 + (index % 5) * 20
            return hosts[index % len(hosts)].url(f"/img/{20_000 + index}.jpeg?w={w}&h={h}&noise=1")

        for index in range(1, total + 1):  # warm the hosts' image cache
            w, h = 560 + (index % 7) * 20, 420 + (index % 5) * 20
            encoded(20_000 + index, "jpeg", w, h, 85, True, False)

    def thumbnail_url(index: int) -> str:
        return hosts[index % len(hosts)].url(f"/img/{THUMBNAIL_SEED + index}.jpeg?w=230&h=170")

    imitation = SearchImitation(
        "127.0.0.70",
        image_url=image_url,
        total=total,
        batch_latency=args.batch_latency,
        thumbnail_url=thumbnail_url if args.thumbnails else None,
    )
    imitation.start()
    conn.send(imitation.base)
    conn.recv()  # stop
    prefix = f"/img/{THUMBNAIL_SEED // 10_000}"
    conn.send(sum(n for host in hosts for path, n in host.hits.items() if path.startswith(prefix)))
    imitation.stop()
    for host in hosts:
        host.stop()


# -- CPU of the worker and of its browsers, from /proc --------------------------------


def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _tree(root: int, skip: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [], {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier and pid != skip}
        found += frontier
    return found


@dataclass
class Cpu:
    worker: float
    browser: float

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.worker - other.worker, self.browser - other.browser)

    @property
    def total(self) -> float:
        return self.worker + self.browser


def subreaper_become() -> None:
    """Adopt this process's orphaned descendants (a Chromium whose chromedriver quit
    first): reaped here, their CPU time is counted instead of lost to init."""
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _orphans_reap(server_pid: int) -> None:
    """Reap the adopted descendants that ended (never a child this process started
    itself: chromedriver and the servers are waited for by their owners)."""
    for pid in _tree(os.getpid(), skip=server_pid):
        fields = _stat(pid)
        if fields and fields[0] == "Z" and int(fields[1]) == os.getpid() and not _started_here(pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _started_here(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "chromedriver"
    except OSError:
        return True


def cpu_now(server_pid: int) -> Cpu:
    """CPU seconds so far of this process (every thread) and of every browser process
    it started: the live ones (with their reaped children) and the reaped ones."""
    _orphans_reap(server_pid)
    own = os.times()
    live = 0
    for pid in _tree(os.getpid(), skip=server_pid):
        fields = _stat(pid)
        if fields:
            live += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return Cpu(own.user + own.system, own.children_user + own.children_system + live / TICK)


# -- the floors ------------------------------------------------------------------------


def pipeline_floor(count: int, hosts: int, per_host: int, latency: float, batch_latency: float) -> float:
    """When the last of ``count`` images is in, from the first page's arrival: result i
    is out with its batch (the first 35 at once, then one batch per ``batch_latency``),
    fetched as soon as one of its host's ``per_host`` slots is free, in ``latency``."""
    slots: dict[int, list[float]] = {h: [0.0] * per_host for h in range(hosts)}
    last = 0.0
    for index in range(1, count + 1):
        out = math.ceil(max(index - BATCH, 0) / BATCH) * batch_latency
        free = slots[index % hosts]
        slot = min(range(per_host), key=free.__getitem__)
        free[slot] = max(out, free[slot]) + latency
        last = max(last, free[slot])
    return last


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})"


# -- the measurements ------------------------------------------------------------------


def browser_start_times(server_pid: int, repeats: int = 3) -> tuple[list[float], list[float]]:
    from downloader.browser import browser_start
    from downloader.config import browser_options_from_settings

    walls, cpus = [], []
    for _ in range(repeats):
        before, started = cpu_now(server_pid), time.monotonic()
        browser = browser_start(browser_options_from_settings())
        browser.driver.current_url  # noqa: B018 - answers
        walls.append(time.monotonic() - started)
        cpus.append((cpu_now(server_pid) - before).total)
        browser.quit()
    return walls, cpus


def context_times(repeats: int = 3) -> list[float]:
    from downloader.browsers import KEEPER
    from downloader.config import browser_options_from_settings

    options = browser_options_from_settings()
    with KEEPER.lend(options):
        pass  # the browser started
    walls = []
    for _ in range(repeats):
        started = time.monotonic()
        with KEEPER.lend(options) as driver:
            driver.current_url  # noqa: B018
            walls.append(time.monotonic() - started)
    return walls


def job_once(count: int, server_pid: int) -> tuple[float, Cpu, str, Audit | None]:
    """One job as the worker runs it: wall, CPU, outcome, the audit of its zip."""
    from django.core.files.storage import default_storage

    from bench.audit import audit_zip
    from jobs.core import services
    from jobs.core.run import job_run
    from jobs.store import records

    job = services.job_submit(
        email="bench@example.org",
        query="red fox",
        requested_count=count,
        run_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
        time_zone="UTC",
    )
    before, started = cpu_now(server_pid), time.monotonic()
    outcome = job_run(job.id)
    wall, cpu = time.monotonic() - started, cpu_now(server_pid) - before
    done = records.job_get(job.id)
    audit = audit_zip(Path(default_storage.path(done.archive_path))) if done.archive_path else None
    services.job_purge(done, by="bench")
    return wall, cpu, outcome, audit


def reuse_ab(jobs: int, count: int, server_pid: int) -> dict[str, list[tuple[float, Cpu]]]:
    """``jobs`` jobs with the browser kept and as many without, alternating (which goes
    first alternates too); the kept browser is new at the start."""
    from downloader.browsers import KEEPER

    KEEPER.close()
    runs: dict[str, list[tuple[float, Cpu]]] = {"on": [], "off": []}
    for number in range(jobs):
        for mode in ("on", "off") if number % 2 == 0 else ("off", "on"):
            settings.IMAGEDL_BROWSER_MAX_USES = 20 if mode == "on" else 1
            wall, cpu, outcome, audit = job_once(count, server_pid)
            if audit is None or audit.images != count:
                print(f"  ! reuse {mode}: {outcome}, {audit.images if audit else 0} of {count} delivered")
            runs[mode].append((wall, cpu))
    KEEPER.close()
    return runs


def ab_report(runs: dict[str, list[tuple[float, Cpu]]], count: int) -> None:
    def line(label: str, entries: list[tuple[float, Cpu]]) -> None:
        walls = [w for w, _ in entries]
        print(
            f"  {label:<22} wall {_spread(walls)} s   CPU {_spread([c.total for _, c in entries])} s "
            f"= browser {_spread([c.browser for _, c in entries])} + worker {_spread([c.worker for _, c in entries])}"
        )

    print(f"jobs of {count} images, reuse on (max uses 20) and off (1) alternating; median (min-max):")
    line("reuse on, first job", runs["on"][:1])
    line(f"reuse on, next {len(runs['on']) - 1} jobs", runs["on"][1:])
    line(f"reuse off, {len(runs['off'])} jobs", runs["off"])


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagedl_site.settings")
    os.environ.setdefault("IMAGEDL_LOG_LEVEL", "WARNING")
    django.setup()
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--batch-latency", type=float, default=0.3)
    parser.add_argument("--corpus", choices=("simple", "realistic"), default="simple")
    parser.add_argument(
        "--ab-jobs", type=int, default=6, help="jobs with reuse on, and as many off (0: none)"
    )
    parser.add_argument("--ab-count", type=int, default=50)
    parser.add_argument("--thumbnails", action="store_true", help="results pages show thumbnails")
    args = parser.parse_args()
    total = max(args.count, args.ab_count) + 100
    # The servers first, forked before any connection or thread of this process exists.
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(
        target=_serve, args=(args, total, theirs), daemon=True
    )
    server.start()
    base = ours.recv()
    subreaper_become()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # the development databases, made if missing
    call_command("sync_cassandra", verbosity=0)
    settings.IMAGEDL_ALLOW_PRIVATE_NETWORKS = True
    settings.IMAGEDL_SCROLL_WAIT = 3.0
    settings.IMAGEDL_BING_URL = base
    settings.IMAGEDL_ENGINE_ORDER = ["bing"]
    per_host = settings.IMAGEDL_PER_HOST_CONNECTIONS
    settings.IMAGEDL_DOWNLOAD_CONCURRENCY = per_host * len(HOSTS)
    work = Path(tempfile.mkdtemp(prefix="imagedl-benchjob-"))
    try:
        stages(args, work, per_host, server.pid)
        if args.ab_jobs:
            ab_report(reuse_ab(args.ab_jobs, args.ab_count, server.pid), args.ab_count)
    finally:
        ours.send("stop")
        if ours.poll(10):
            print(f"thumbnails the browsers asked for: {ours.recv()}")
        server.join(10)
        shutil.rmtree(work, ignore_errors=True)


def stages(args: argparse.Namespace, work: Path, per_host: int, server_pid: int) -> None:
    from django.core.files.storage import FileSystemStorage

    from downloader.archive import write_archive
    from downloader.browsers import KEEPER
    from downloader.collect import collect_images
    from downloader.config import (
        browser_options_from_settings,
        engine_options_from_settings,
        fetcher_from_settings,
        validation_limits_from_settings,
    )
    from downloader.engines.base import SearchRules
    from downloader.engines.bing import BingEngine

    start_walls, start_cpus = browser_start_times(server_pid)
    t_start = statistics.median(start_walls)
    context_walls = context_times()
    bing = BingEngine(engine_options_from_settings())
    # 1. collect URLs, each in a fresh context of the running browser
    with KEEPER.lend(browser_options_from_settings()) as driver:
        page_started = time.monotonic()
        driver.get(bing.results_url("first page only", SearchRules()))
        t_first_page = time.monotonic() - page_started
    with KEEPER.lend(browser_options_from_settings()) as driver:
        started = time.monotonic()
        candidates = list(bing.search(driver, "red fox", wanted=args.count, rules=SearchRules()))
        t_collect = time.monotonic() - started
    KEEPER.close()  # the whole job below starts its own, as a worker's first job does
    batches = math.ceil(max(args.count - BATCH, 0) / BATCH)
    f_collect = t_first_page + batches * args.batch_latency
    # 2. download
    started = time.monotonic()
    result = collect_images(
        iter(candidates),
        wanted=args.count,
        workdir=work / "dl",
        fetcher=fetcher_from_settings(),
        limits=validation_limits_from_settings(),
    )
    t_download = time.monotonic() - started
    f_download = math.ceil(math.ceil(args.count / len(HOSTS)) / per_host) * args.latency
    # 3. pack
    storage = FileSystemStorage(location=str(work / "media"))
    started = time.monotonic()
    archive = write_archive(result.kept, name_stem="red fox", path="a.zip", storage=storage)
    t_pack = time.monotonic() - started
    started = time.monotonic()
    with open(work / "plain.bin", "wb") as out:
        for image in result.kept:
            with open(image.path, "rb") as src:
                shutil.copyfileobj(src, out)
    f_pack = time.monotonic() - started
    # 4. the whole job, as a worker's first job runs it (browser start included)
    t_job, cpu_job, outcome, audit = job_once(args.count, server_pid)
    KEEPER.close()
    f_pipeline = pipeline_floor(args.count, len(HOSTS), per_host, args.latency, args.batch_latency)
    critical = t_start + t_first_page + f_pipeline + f_pack

    print(
        f"{args.corpus} corpus: {args.count} images; Bing batches of {BATCH} at {args.batch_latency * 1000:.0f} ms; "
        f"{len(HOSTS)} image hosts at {args.latency * 1000:.0f} ms, {per_host} per host"
    )
    print(
        f"browser start: {_spread(start_walls)} s wall, {_spread(start_cpus)} CPU-s (Chromium + worker); "
        f"fresh context in a running browser: {_spread(context_walls)} s"
    )
    print(
        f"collect URLs : {t_collect:6.2f} s   floor {f_collect:6.2f} s  ({t_collect / f_collect:.2f}x)  "
        f"[{len(candidates)} URLs, {batches} async batches, first page {t_first_page:.2f} s]"
    )
    print(
        f"download     : {t_download:6.2f} s   floor {f_download:6.2f} s  ({t_download / f_download:.2f}x)  "
        f"[kept {len(result.kept)}]"
    )
    print(
        f"pack         : {t_pack:6.2f} s   floor {f_pack:6.2f} s  ({t_pack / max(f_pack, 1e-3):.2f}x)  "
        f"[{archive.bytes / 1e6:.1f} MB]"
    )
    print(
        f"whole job    : {t_job:6.2f} s   critical path {critical:6.2f} s  ({t_job / critical:.2f}x)  "
        f"[browser start {t_start:.2f} + first page {t_first_page:.2f} + search/download pipeline "
        f"{f_pipeline:.2f} + pack {f_pack:.2f}; CPU {cpu_job.total:.2f} s = browser {cpu_job.browser:.2f} "
        f"+ worker {cpu_job.worker:.2f}; {outcome}]"
    )
    print(
        f"asked {args.count}, delivered {audit.images if audit else 0}; {audit.line() if audit else 'no archive'}"
    )


if __name__ == "__main__":
    main()
