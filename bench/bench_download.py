"""Throughput of `manage.py download_urls` against img2dataset, side by side.

A corpus of distinct, valid images (default 2000) spread over 8 loopback hosts
(127.0.0.61-68), each response delayed by --latency (default 100 ms). Both tools get
the same URL list and the same concurrency budget: 32 requests in flight (download_urls:
--concurrency 32 --per-host 4 over 8 hosts; img2dataset: 1 process x 32 threads,
resize off). Prints images/s of each, the ratio, the floor the corpus cannot beat
(the larger of the latency floor and the bytes over the hosts' measured loopback
bandwidth), how far each tool is from it, and download_urls' peak RSS.

    .venv/bin/python bench/bench_download.py [--count 2000] [--latency 0.1]

img2dataset runs from its own virtualenv (bench/.venv-img2dataset, created by
`pip install img2dataset` there); the comparison is skipped if it is missing.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.audit import audit_zip  # noqa: E402
from tests.imagehosts import ImageHost, encoded  # noqa: E402

HOSTS = [f"127.0.0.{n}" for n in range(61, 69)]
IMG2DATASET = ROOT / "bench" / ".venv-img2dataset" / "bin" / "img2dataset"


def corpus(hosts: list[ImageHost], count: int) -> tuple[list[str], int]:
    urls, total_bytes = [], 0
    for n in range(count):
        host = hosts[n % len(hosts)]
        width, height = 560 + (n % 7) * 20, 420 + (n % 5) * 20
        total_bytes += len(encoded(10_000 + n, "jpeg", width, height, 85, True, False))  # warm the cache
        urls.append(host.url(f"/img/{10_000 + n}.jpeg?w={width}&h={height}&noise=1"))
    return urls, total_bytes


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


def run_download_urls(url_file: Path, out: Path, per_host: int, concurrency: int) -> tuple[float, int, str]:
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="imagedl_site.settings",
        IMAGEDL_ALLOW_PRIVATE_NETWORKS="true",
        IMAGEDL_LOG_LEVEL="WARNING",
    )
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "peak_rss.py"),
            "manage.py",
            "download_urls",
            str(url_file),
            "--out",
            str(out),
            "--no-progress",
            "--concurrency",
            str(concurrency),
            "--per-host",
            str(per_host),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    summary = (
        result.stdout.strip().splitlines()[-1]
        + f"\n  CPU time of download_urls: {cpu:.1f} s over {elapsed:.1f} s wall"
    )
    peaks = [int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("PEAK_RSS_KB ")]
    return elapsed, peaks[-1], summary


def run_img2dataset(url_file: Path, out: Path, threads: int) -> tuple[float, int] | None:
    if not IMG2DATASET.exists():
        return None
    started = time.monotonic()
    subprocess.run(
        [
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
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    saved = sum(1 for p in out.rglob("*.jpg"))
    return elapsed, saved


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--per-host", type=int, default=4)
    args = parser.parse_args()
    concurrency = args.per_host * len(HOSTS)
    hosts = [ImageHost(address, latency=args.latency).start() for address in HOSTS]
    work = Path(tempfile.mkdtemp(prefix="imagedl-bench-"))
    try:
        print(f"generating {args.count} distinct images ...", flush=True)
        urls, total_bytes = corpus(hosts, args.count)
        url_file = work / "urls.txt"
        url_file.write_text("\n".join(urls) + "\n")
        per_host_urls = math.ceil(args.count / len(hosts))
        latency_floor = math.ceil(per_host_urls / args.per_host) * args.latency
        bandwidth = loopback_bandwidth(hosts)
        transfer_floor = total_bytes / bandwidth
        floor_latency = max(latency_floor, transfer_floor)
        print(
            f"corpus: {args.count} URLs, {total_bytes / 1e6:.1f} MB ({total_bytes / args.count / 1e3:.0f} KB/image), "
            f"{len(hosts)} hosts, {args.latency * 1000:.0f} ms latency, {concurrency} in flight "
            f"({args.per_host} per host)"
        )
        print(
            f"floor: {floor_latency:.2f} s = the larger of latency {latency_floor:.2f} s "
            f"(ceil({per_host_urls} URLs per host / {args.per_host} slots) x latency) and transfer "
            f"{transfer_floor:.2f} s ({total_bytes / 1e6:.1f} MB at the hosts' measured "
            f"{bandwidth / 1e6:.0f} MB/s over loopback)"
        )

        ours, peak_kb, summary = run_download_urls(url_file, work / "ours.zip", args.per_host, concurrency)
        with zipfile.ZipFile(work / "ours.zip") as zf:
            kept = len(zf.namelist()) - 1
        print(
            f"download_urls: {ours:.2f} s, {kept / ours:.1f} images/s, {ours / floor_latency:.2f}x the floor, "
            f"peak RSS {peak_kb / 1024:.0f} MB"
        )
        print(f"  {summary}")
        print(f"  {audit_zip(work / 'ours.zip').line()}")

        theirs = run_img2dataset(url_file, work / "img2dataset", concurrency)
        if theirs is None:
            print("img2dataset: not installed in bench/.venv-img2dataset; comparison skipped")
            return
        seconds, saved = theirs
        print(
            f"img2dataset:   {seconds:.2f} s, {saved / seconds:.1f} images/s, {seconds / floor_latency:.2f}x the floor "
            f"({saved} files)"
        )
        print(f"ratio (download_urls / img2dataset images/s): {(kept / ours) / (saved / seconds):.2f}x")
    finally:
        for host in hosts:
            host.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
