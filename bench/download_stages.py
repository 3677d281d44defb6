"""CPU per image of one `manage.py download_urls` run, stage by stage.

Wraps the download engine's stages (the request and its headers, the body, the decode,
the signature, the duplicate judgement, the collector's loop, the zip) so each call
adds the CPU its thread spent (``time.thread_time``, C code without the GIL included)
to its stage, less what nested stages spent; prints each stage's milliseconds per
image, the process's CPU (user + system) and what the stages leave unaccounted
(start-up, imports, garbage collection, the candidates' and watchdog's threads), and
the wall-clock times of the phases. Serve the URLs first (e.g. bench_download's image
hosts), then:

    .venv/bin/python -m bench.download_stages URLS.txt OUT.zip [download_urls options]
"""

from __future__ import annotations

import collections
import importlib
import os
import resource
import sys
import threading
import time
from collections.abc import Callable

STAGES = (
    ("downloader.http", "Fetcher", "_request", "http: connect, request, headers"),
    ("downloader.http", "Fetcher", "_stream", "http: body read, sha256, file write"),
    ("downloader.http", "Fetcher", "fetch", "http: the rest (slots, watchdog)"),
    ("downloader.validation", None, "validate_file", "validate: the rest (read, sniff, open, checks)"),
    ("PIL.ImageFile", "ImageFile", "load", "validate: decode (Pillow)"),
    ("downloader.validation", None, "_validate_still_webp", "validate: decode (still WebP, libwebp)"),
    ("downloader.validation", None, "signature", "dedupe: signature (16x16 thumbnail)"),
    ("downloader.validation", None, "image_rights", "validate: rights (EXIF, XMP)"),
    ("downloader.dedupe", "DuplicateFilter", "offer", "dedupe: judgement (scan, confirm)"),
    ("downloader.collect", "Collector", "_loop", "collector: loop (start, book)"),
    ("downloader.archive", None, "write_archive", "zip: write_archive"),
)
PHASES = {"collector: loop (start, book)", "zip: write_archive"}


class StageClock:
    """CPU seconds per stage, each less its nested stages', summed over threads."""

    def __init__(self) -> None:
        self.spent: collections.Counter = collections.Counter()
        self.calls: collections.Counter = collections.Counter()
        self.phases: list[str] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        self._started = time.monotonic()

    def wrap(self, function: Callable, label: str) -> Callable:
        def timed(*args, **kwargs):
            stack = self._local.__dict__.setdefault("stack", [])
            cpu, wall = time.thread_time(), time.monotonic()
            stack.append(0.0)
            try:
                return function(*args, **kwargs)
            finally:
                nested = stack.pop()
                total = time.thread_time() - cpu
                if stack:
                    stack[-1] += total
                with self._lock:
                    self.spent[label] += total - nested
                    self.calls[label] += 1
                if label in PHASES:
                    end = time.monotonic() - self._started
                    self.phases.append(f"{label}: {end - (time.monotonic() - wall):.2f}-{end:.2f} s")

        return timed

    def install(self) -> None:
        for module_name, class_name, name, label in STAGES:
            module = importlib.import_module(module_name)
            owner = getattr(module, class_name) if class_name else module
            setattr(owner, name, self.wrap(getattr(owner, name), label))
        collect = importlib.import_module("downloader.collect")
        validation = importlib.import_module("downloader.validation")
        collect.validate_file = validation.validate_file  # imported by name there

    def report(self, images: int) -> str:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        total = usage.ru_utime + usage.ru_stime
        lines = [
            f"process CPU {total:.2f} s = {total / images * 1000:.2f} ms/image "
            f"(user {usage.ru_utime:.2f} s, system {usage.ru_stime:.2f} s); "
            f"wall {time.monotonic() - self._started:.2f} s"
        ]
        for label, seconds in self.spent.most_common():
            lines.append(f"  {seconds / images * 1000:6.3f} ms/image  {label}  ({self.calls[label]} calls)")
        rest = total - sum(self.spent.values())
        lines.append(
            f"  {rest / images * 1000:6.3f} ms/image  unaccounted (start-up, imports, GC, other threads)"
        )
        lines.extend(f"  phase {phase}" for phase in self.phases)
        return "\n".join(lines)


def main() -> None:
    urls, out, *rest = sys.argv[1:]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagedl_site.settings")
    os.environ.setdefault("IMAGEDL_ALLOW_PRIVATE_NETWORKS", "true")
    os.environ.setdefault("IMAGEDL_LOG_LEVEL", "WARNING")
    clock = StageClock()
    import django

    django.setup()
    clock.install()
    from django.core.management import call_command

    options = ["--no-progress", "--concurrency", "32", "--per-host", "4", *rest]
    call_command("download_urls", urls, "--out", out, *options)
    images = sum(1 for line in open(urls) if line.strip() and not line.startswith("#"))
    print(clock.report(images), file=sys.stderr)


if __name__ == "__main__":
    main()
