"""Throughput of `manage.py download_urls` against img2dataset, side by side.

A corpus of distinct, valid images (default 2000) spread over 8 loopback hosts
(127.0.0.61-68), each response delayed by --latency (default 100 ms). Both tools get
the same URL list and the same concurrency budget: 32 requests in flight (download_urls:
--concurrency 32 --per-host 4 over 8 hosts; img2dataset: 1 process x 32 threads,
resize off, ``--disable_all_reencoding True``: the files kept as they came, as
download_urls keeps them; ``--img2dataset-reencode`` gives its default, which decodes
and re-encodes every image). Prints images/s of each, the ratio, the floor the corpus
cannot beat (the larger of the latency floor and the bytes over the hosts' measured
loopback bandwidth), how far each tool is from it, and download_urls' peak RSS.

    .venv/bin/python -m bench.bench_download [--count 2000] [--latency 0.1] [--pack all]
        [--repeat 3] [--before DIR]

``--repeat`` runs every tool that many times, interleaved (each once per repetition),
and prints medians with their range. ``--before`` names a checkout of another commit
(e.g. ``git worktree add --detach ../base main``) whose download_urls runs too, in the
same repetitions: a before/after measured back to back on the same load.

``--pack`` (a layout, several comma-separated, or ``all``) runs download_urls again for
each layout (downloader.layouts) and prints them side by side with zip: seconds,
images/s and its share of zip's in the same run, peak RSS, CPU per image.

Two corpora, in the same run (``--corpus`` picks one):

  simple      the original: 560-680 x 420-500 JPEGs of shapes with light grain (~61 KB)
  realistic   bench/corpus.py: photo-like, 300x200 to 4000x3000 with a long tail, mostly
              JPEG with some PNG, WebP and GIF, about 140 KB on average

For each corpus it also prints CPU seconds per image, how many of the distinct images
were kept, and the near-duplicate rule's false merges and catch rate on a generated set
of re-encodes, resizes, format changes and crops of that corpus (bench/dedupe_eval.py).

img2dataset runs from its own virtualenv (bench/.venv-img2dataset, created by
`pip install img2dataset` there); the comparison is skipped if it is missing.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bench.audit import audit_zip
from bench.corpus import realistic_corpus
from downloader.archive import is_image_entry
from downloader.choices import PACKS
from tests.imagehosts import ImageHost, encoded

ROOT = Path(__file__).resolve().parent.parent

HOSTS = [f"127.0.0.{n}" for n in range(61, 69)]
IMG2DATASET = ROOT / "bench" / ".venv-img2dataset" / "bin" / "img2dataset"


def simple_corpus(hosts: list[ImageHost], count: int) -> tuple[list[str], int]:
    urls, total_bytes = [], 0
    for n in range(count):
        host = hosts[n % len(hosts)]
        width, height = 560 + (n % 7) * 20, 420 + (n % 5) * 20
        total_bytes += len(encoded(10_000 + n, "jpeg", width, height, 85, True, False))  # warm the cache
        urls.append(host.url(f"/img/{10_000 + n}.jpeg?w={width}&h={height}&noise=1"))
    return urls, total_bytes


def realistic_urls(hosts: list[ImageHost], count: int) -> tuple[list[str], int]:
    _, items = realistic_corpus(count)
    urls = [hosts[n % len(hosts)].url(f"/file/{item.name}") for n, item in enumerate(items)]
    return urls, sum(item.bytes for item in items)


def loopback_bandwidth(hosts: list[ImageHost], per_stream: int = 16 << 20) -> float:
    """Bytes/s the image hosts can send at once (one stream per host, read and
    dropped): the transfer part of the floor. Timed from the first body byte."""
    import http.client
    import threading

    spans: list[tuple[float, float, int]] = []
    lock = threading.Lock()

    def stream(host: ImageHost) -> None:
        conn = http.client.HTTPConnection(host.address, host.port, timeout=30)
        conn.request("GET", "/endless.jpg")
        response = conn.getresponse()
        # One reused buffer: the bench process must not grow (a child forked from it
        # would count the parent's pages in its peak RSS).
        buffer = memoryview(bytearray(256 << 10))
        got = response.readinto(buffer)
        started = time.monotonic()
        while got < per_stream:
            n = response.readinto(buffer)
            if not n:
                break
            got += n
        with lock:
            spans.append((started, time.monotonic(), got))
        conn.close()

    threads = [threading.Thread(target=stream, args=(host,)) for host in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(s[2] for s in spans) / (max(s[1] for s in spans) - min(s[0] for s in spans))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_download_urls(
    url_file: Path, out: Path, per_host: int, concurrency: int, pack: str = "zip", root: Path = ROOT
) -> tuple[float, int, float, str]:
    """One download_urls process (of the checkout at ``root``): seconds, peak RSS in KB,
    CPU seconds (user + system), and its summary line."""
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="imagedl_site.settings",
        IMAGEDL_ALLOW_PRIVATE_NETWORKS="true",
        IMAGEDL_LOG_LEVEL="WARNING",
    )
    cpu_before = children_cpu()
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "peak_rss.py"),
            str(root / "manage.py"),
            "download_urls",
            str(url_file),
            "--out",
            str(out),
            "--no-progress",
            "--concurrency",
            str(concurrency),
            "--per-host",
            str(per_host),
            "--pack",
            pack,
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.monotonic() - started
    cpu = children_cpu() - cpu_before
    summary = result.stdout.strip().splitlines()[-1]
    peaks = [int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("PEAK_RSS_KB ")]
    return elapsed, peaks[-1], cpu, summary


def img2dataset_command(url_file: Path, out: Path, threads: int, reencode: bool) -> list[str]:
    """img2dataset's command line: files kept as downloaded (``--disable_all_reencoding
    True``, as people who keep originals run it) unless ``reencode``, its default, which
    decodes and re-encodes every image as a JPEG."""
    return [
        str(IMG2DATASET),
        "--url_list",
        str(url_file),
        "--input_format",
        "txt",
        "--output_folder",
        str(out),
        "--output_format",
        "files",
        "--processes_count",
        "1",
        "--thread_count",
        str(threads),
        "--resize_mode",
        "no",
        "--timeout",
        "10",
        "--retries",
        "0",
        "--disallowed_header_directives",
        "[]",
        "--compute_hash",
        "sha256",
        "--enable_wandb",
        "False",
        *([] if reencode else ["--disable_all_reencoding", "True"]),
    ]


def run_img2dataset(
    url_file: Path, out: Path, threads: int, args: argparse.Namespace
) -> tuple[float, int, float] | None:
    if not IMG2DATASET.exists():
        return None
    cpu_before = children_cpu()
    started = time.monotonic()
    subprocess.run(
        img2dataset_command(url_file, out, threads, args.img2dataset_reencode),
        check=True,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    saved = sum(1 for p in out.rglob("*.jpg"))  # every format is saved as .jpg (resize off: bytes kept)
    return elapsed, saved, children_cpu() - cpu_before


def source_bytes(url: str, files: Path | None) -> bytes | None:
    """The bytes a corpus URL serves, for the audit's false-merge check."""
    parts = urlsplit(url)
    name = parts.path.rsplit("/", 1)[1]
    if parts.path.startswith("/file/") and files is not None:
        return (files / name).read_bytes()
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    seed, _, fmt = name.partition(".")
    return encoded(int(seed), fmt, int(query["w"]), int(query["h"]), 85, True, False)


@dataclass
class Run:
    """One run of a tool: seconds, images kept, peak RSS in KB (0: not measured), CPU s."""

    seconds: float
    kept: int
    peak_kb: int
    cpu: float
    summary: str = ""  # download_urls' last line

    @property
    def rate(self) -> float:
        return self.kept / self.seconds


def spread(values: list[float], fmt: str = ".1f") -> str:
    """The median, and the range when there is more than one value."""
    middle = format(statistics.median(values), fmt)
    if len(values) < 2:
        return middle
    return f"{middle} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def bench_corpus(
    label: str,
    urls: list[str],
    total_bytes: int,
    hosts: list[ImageHost],
    args: argparse.Namespace,
    work: Path,
    bandwidth: float,
    files: Path | None,
) -> None:
    count = len(urls)
    concurrency = args.per_host * len(hosts)
    url_file = work / f"urls-{label}.txt"
    url_file.write_text("\n".join(urls) + "\n")
    per_host_urls = math.ceil(count / len(hosts))
    latency_floor = math.ceil(per_host_urls / args.per_host) * args.latency
    transfer_floor = total_bytes / bandwidth
    floor = max(latency_floor, transfer_floor)
    print(f"\n== {label} corpus ==")
    print(
        f"corpus: {count} URLs, {total_bytes / 1e6:.1f} MB ({total_bytes / count / 1e3:.0f} KB/image), "
        f"{len(hosts)} hosts, {args.latency * 1000:.0f} ms latency, {concurrency} in flight "
        f"({args.per_host} per host)"
    )
    print(
        f"floor: {floor:.2f} s = the larger of latency {latency_floor:.2f} s "
        f"(ceil({per_host_urls} URLs per host / {args.per_host} slots) x latency) and transfer "
        f"{transfer_floor:.2f} s ({total_bytes / 1e6:.1f} MB at the hosts' measured "
        f"{bandwidth / 1e6:.0f} MB/s over loopback)"
    )
    engines = {"download_urls": ROOT, **({"before": args.before.resolve()} if args.before else {})}
    runs: dict[tuple[str, str], list[Run]] = {}
    theirs: list[Run] = []
    installed = IMG2DATASET.exists() and not args.no_img2dataset
    for repetition in range(args.repeat):
        # Interleaved: every tool once per repetition, so a change of the machine's
        # load touches them all alike.
        for engine, root in engines.items():
            for pack in args.pack:
                out = work / f"{engine}-{label}-{pack}.zip"
                run = bench_layout(pack, url_file, out, args.per_host, concurrency, root)
                runs.setdefault((engine, pack), []).append(run)
                if pack == "zip" and repetition == 0:
                    print(f"{engine} ({root}): {run.summary}")
                    print(f"  {audit_zip(out, urls, lambda url: source_bytes(url, files)).line()}")
                out.unlink()
        if installed:
            done = run_img2dataset(url_file, work / f"img2dataset-{label}", concurrency, args)
            assert done is not None
            theirs.append(Run(*done[:2], 0, done[2]))
            shutil.rmtree(work / f"img2dataset-{label}", ignore_errors=True)
    print_runs(runs, theirs, floor, count, args)
    if not installed:
        print("img2dataset: skipped (--no-img2dataset, or not installed in bench/.venv-img2dataset)")
    if args.dedupe_sample:
        from bench.dedupe_eval import evaluate

        print(f"  {evaluate(label, args.dedupe_sample).line()}")


def print_runs(
    runs: dict[tuple[str, str], list[Run]], theirs: list[Run], floor: float, count: int, args
) -> None:
    """Every tool's figures (medians over the repetitions, ranges in brackets), each
    layout against zip's images/s of the same engine in the same repetition, and each
    engine's zip against img2dataset in the same repetition."""
    print(f"medians of {args.repeat} interleaved repetition(s), (min-max):")
    print(
        f"  {'engine / layout':<28} {'images/s':<20} {'x floor':<16} {'vs zip':<14} {'peak RSS MB':<15} "
        f"{'CPU ms/image':<14} kept"
    )
    for (engine, pack), values in runs.items():
        zips = runs[(engine, "zip")]
        share = [100 * run.rate / base.rate for run, base in zip(values, zips, strict=True)]
        print(
            f"  {engine + ' / ' + pack:<28} {spread([r.rate for r in values]):<20} "
            f"{spread([r.seconds / floor for r in values], '.2f'):<16} {spread(share, '.0f') + '%':<14} "
            f"{spread([r.peak_kb / 1024 for r in values], '.0f'):<15} "
            f"{spread([r.cpu / max(r.kept, 1) * 1000 for r in values]):<14} "
            f"{min(r.kept for r in values)} of {count}"
        )
    if not theirs:
        return
    method = "re-encoding every image" if args.img2dataset_reencode else "--disable_all_reencoding True"
    print(
        f"  {'img2dataset':<28} {spread([r.rate for r in theirs]):<20} "
        f"{spread([r.seconds / floor for r in theirs], '.2f'):<16} {'':<14} {'-':<15} "
        f"{spread([r.cpu / max(r.kept, 1) * 1000 for r in theirs]):<14} "
        f"{min(r.kept for r in theirs)} files  [{method}, 1 process x 32 threads, resize off]"
    )
    for engine in dict.fromkeys(engine for engine, _ in runs):
        ratio = [ours.rate / their.rate for ours, their in zip(runs[(engine, "zip")], theirs, strict=True)]
        print(f"ratio ({engine} / img2dataset images/s): {spread(ratio, '.2f')}x")


def bench_layout(pack: str, url_file: Path, out: Path, per_host: int, concurrency: int, root: Path) -> Run:
    """One download_urls run packing ``pack``; images kept are its manifest's rows (for
    zip: its image entries)."""
    seconds, peak_kb, cpu, summary = run_download_urls(url_file, out, per_host, concurrency, pack, root)
    with zipfile.ZipFile(out) as zf:
        if pack == "zip":
            kept = sum(
                1 for name in zf.namelist() if is_image_entry(name)
            )  # not the manifest, nor the credits
        else:
            kept = len(zf.read("manifest.csv").decode().splitlines()) - 1
    return Run(seconds, kept, peak_kb, cpu, summary)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--per-host", type=int, default=4)
    parser.add_argument("--corpus", choices=("both", "simple", "realistic"), default="both")
    parser.add_argument(
        "--dedupe-sample",
        type=int,
        default=250,
        help="originals per corpus turned into near-duplicates for the dedupe figures (0: skip)",
    )
    parser.add_argument("--no-img2dataset", action="store_true", help="only download_urls")
    parser.add_argument(
        "--img2dataset-reencode",
        action="store_true",
        help="img2dataset decodes and re-encodes every image (its default; off here: originals kept)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="interleaved repetitions (medians printed)")
    parser.add_argument(
        "--before",
        type=Path,
        help="a checkout of another commit whose download_urls runs too, interleaved (A/B)",
    )
    parser.add_argument(
        "--pack",
        default="zip",
        help=f"layouts to pack, comma-separated, or all ({', '.join(PACKS)}); zip always runs first",
    )
    args = parser.parse_args()
    chosen = PACKS if args.pack == "all" else tuple(p.strip() for p in args.pack.split(",") if p.strip())
    unknown = set(chosen) - set(PACKS)
    if unknown:
        parser.error(f"--pack: unknown {', '.join(sorted(unknown))}")
    args.pack = ["zip", *(p for p in chosen if p != "zip")]
    corpora = ["simple", "realistic"] if args.corpus == "both" else [args.corpus]
    work = Path(tempfile.mkdtemp(prefix="imagedl-bench-"))
    hosts: list[ImageHost] = []
    try:
        prepared = {}
        for label in corpora:
            print(f"preparing the {label} corpus of {args.count} distinct images ...", flush=True)
            if label == "realistic":
                prepared[label] = realistic_corpus(args.count)[0]
        files = prepared.get("realistic")
        hosts = [ImageHost(address, latency=args.latency, files=files).start() for address in HOSTS]
        bandwidth = loopback_bandwidth(hosts)
        for label in corpora:
            make = simple_corpus if label == "simple" else realistic_urls
            urls, total_bytes = make(hosts, args.count)
            bench_corpus(label, urls, total_bytes, hosts, args, work, bandwidth, files)
    finally:
        for host in hosts:
            host.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
