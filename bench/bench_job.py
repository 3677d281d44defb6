"""A 500-image job end to end against the local imitations, next to its floors.

Bing imitation with async result batches delayed by --batch-latency (default 300 ms,
35 results per batch); 8 image hosts (127.0.0.71-78) with --latency (default 100 ms).
Measures, each on its own and then as one real job (job_run: Cassandra bookkeeping,
events, archive through storage):

  collect URLs   the Bing engine in headless Chromium gathering 500 full-size URLs
                 floor: first page + sequential async batches x batch latency
  download       collect_images on those URLs (validate, de-duplicate)
                 floor: ceil(URLs per host / per-host slots) x latency
  pack           write_archive of the kept images
                 floor: writing the same bytes to one file (the disk)
  whole job      job_run, search and download overlapping
                 target: within 1.5x the sum of the floors

    .venv/bin/python -m bench.bench_job [--count 500] [--corpus simple|realistic]

``--corpus realistic`` serves the photo-like corpus of bench/corpus.py (300x200 to
4000x3000, mostly JPEG, ~133 KB) instead of the simple 560-680 px JPEGs.

Uses the development keyspace and SQLite file (created if missing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import django
from django.conf import settings

from bench.corpus import realistic_corpus
from tests.imagehosts import ImageHost, encoded
from tests.imitations import SearchImitation

HOSTS = [f"127.0.0.{n}" for n in range(71, 79)]


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagedl_site.settings")
    os.environ.setdefault("IMAGEDL_LOG_LEVEL", "WARNING")
    django.setup()
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--batch-latency", type=float, default=0.3)
    parser.add_argument("--corpus", choices=("simple", "realistic"), default="simple")
    args = parser.parse_args()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # the development databases, made if missing
    call_command("sync_cassandra", verbosity=0)
    settings.IMAGEDL_ALLOW_PRIVATE_NETWORKS = True
    settings.IMAGEDL_SCROLL_WAIT = 3.0
    per_host = settings.IMAGEDL_PER_HOST_CONNECTIONS
    settings.IMAGEDL_DOWNLOAD_CONCURRENCY = per_host * len(HOSTS)
    total = args.count + 100
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
    imitation = SearchImitation(
        "127.0.0.70", image_url=image_url, total=total, batch_latency=args.batch_latency
    )
    imitation.start()
    settings.IMAGEDL_BING_URL = imitation.base
    work = Path(tempfile.mkdtemp(prefix="imagedl-benchjob-"))
    try:
        from downloader.archive import write_archive
        from downloader.browser import open_browser
        from downloader.collect import collect_images
        from downloader.config import (
            browser_options_from_settings,
            engine_options_from_settings,
            fetcher_from_settings,
            validation_limits_from_settings,
        )
        from downloader.engines.base import SearchRules
        from downloader.engines.bing import BingEngine

        bing = BingEngine(engine_options_from_settings())
        # 1. collect URLs (browser start excluded: it is the same for any engine)
        with open_browser(browser_options_from_settings()) as driver:
            started = time.monotonic()
            candidates = list(bing.search(driver, "red fox", wanted=args.count, rules=SearchRules()))
            t_collect = time.monotonic() - started
            page_started = time.monotonic()
            driver.get(bing.results_url("first page only", SearchRules()))
            t_first_page = time.monotonic() - page_started
        batches = math.ceil(max(args.count - 35, 0) / 35)
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
        f_download = math.ceil(math.ceil(args.count / len(hosts)) / per_host) * args.latency
        # 3. pack
        from django.core.files.storage import FileSystemStorage

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
        # 4. the whole job, as the worker runs it
        from jobs.core import services
        from jobs.core.run import job_run
        from jobs.store import records

        job = services.job_submit(
            email="bench@example.org",
            query="red fox",
            requested_count=args.count,
            run_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
            time_zone="UTC",
        )
        started = time.monotonic()
        outcome = job_run(job.id)
        t_job = time.monotonic() - started
        done = records.job_get(job.id)
        from django.core.files.storage import default_storage

        from bench.audit import audit_zip

        audit = audit_zip(Path(default_storage.path(done.archive_path)))
        services.job_purge(done, by="bench")

        print(
            f"{args.corpus} corpus: {args.count} images; Bing batches of 35 at {args.batch_latency * 1000:.0f} ms; {len(hosts)} image hosts at "
            f"{args.latency * 1000:.0f} ms, {per_host} per host"
        )
        print(
            f"collect URLs : {t_collect:6.2f} s   floor {f_collect:6.2f} s  ({t_collect / f_collect:.2f}x)  "
            f"[{len(candidates)} URLs, {batches} async batches]"
        )
        print(
            f"download     : {t_download:6.2f} s   floor {f_download:6.2f} s  ({t_download / f_download:.2f}x)  "
            f"[kept {len(result.kept)}]"
        )
        print(
            f"pack         : {t_pack:6.2f} s   floor {f_pack:6.2f} s  ({t_pack / max(f_pack, 1e-3):.2f}x)  "
            f"[{archive.bytes / 1e6:.1f} MB]"
        )
        floors = f_collect + f_download + f_pack
        print(
            f"whole job    : {t_job:6.2f} s   sum of floors {floors:6.2f} s  ({t_job / floors:.2f}x)  "
            f"[{outcome}, browser start included]"
        )
        print(f"asked {args.count}, delivered {audit.images}; {audit.line()}")
    finally:
        imitation.stop()
        for host in hosts:
            host.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
