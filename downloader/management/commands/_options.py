"""What the download commands share: their filter options, progress bar and summary."""

from __future__ import annotations

import sys
from collections.abc import Callable

from django.core.management.base import CommandError, CommandParser

from downloader.choices import DEFAULT_SHARD_MB, FORMATS, PACK_DEFAULT, PACKS, parse_formats, parse_min_size
from downloader.collect import CollectResult, Counts, ImageRules
from downloader.layouts import PackOptions


def add_filter_arguments(parser: CommandParser) -> None:
    parser.add_argument("--formats", default="", help="e.g. jpeg,png (default: any)")
    parser.add_argument("--min-size", default="", help="WIDTHxHEIGHT, e.g. 800x600")
    parser.add_argument(
        "--convert-to", choices=sorted(FORMATS), default=None, help="re-encode every image to this format"
    )
    parser.add_argument("--no-progress", action="store_true")


def image_rules(options: dict) -> ImageRules:
    """The --formats, --min-size and --convert-to options as rules; CommandError if bad."""
    try:
        formats = parse_formats(options["formats"]) if options["formats"] else frozenset()
    except ValueError as exc:
        raise CommandError(f"--formats: {exc}") from None
    try:
        min_w, min_h = parse_min_size(options["min_size"]) if options["min_size"] else (0, 0)
    except ValueError as exc:
        raise CommandError(f"--min-size {exc}") from None
    return ImageRules(
        formats=set(formats),
        min_width=min_w,
        min_height=min_h,
        min_side=0 if options["min_size"] else None,  # --min-size replaces the junk floor
        output_format=options["convert_to"],
    )


def add_pack_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--pack",
        choices=PACKS,
        default=PACK_DEFAULT,
        help="the zip's layout: the images (zip), a Hugging Face image folder, Parquet or WebDataset shards",
    )
    parser.add_argument(
        "--shard-mb",
        type=int,
        default=DEFAULT_SHARD_MB,
        help=f"a WebDataset shard's largest size in MB (default {DEFAULT_SHARD_MB})",
    )


def pack_options(options: dict) -> PackOptions:
    """The --pack and --shard-mb options; CommandError if bad."""
    try:
        return PackOptions(layout=options["pack"], shard_mb=options["shard_mb"])
    except ValueError as exc:
        raise CommandError(f"--pack/--shard-mb: {exc}") from None


class ProgressBar:
    """A tqdm bar on stderr following the collector's counts (or nothing, when off)."""

    def __init__(self, total: int, enabled: bool, write: Callable[[str], object]) -> None:
        self._write = write
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True, mininterval=0.5)

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            self._write(text)

    def update(self, counts: Counts) -> None:
        if self.bar is not None:
            self.bar.set_postfix(found=counts.found, rejected=counts.rejected_total, refresh=False)
            self.bar.update(max(0, min(counts.kept, self.bar.total) - self.bar.n))  # redraws at most 2/s

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def summary(result: CollectResult, kept: int, out: object, size: int) -> str:
    """The closing line: every candidate accounted for (found = kept + rejected + unused)."""
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(result.rejected.items())) or "none"
    return (
        f"asked {result.asked}, found {result.found}, kept {kept}, "
        f"rejected {sum(result.rejected.values())} ({reasons}), unused {result.unused}; "
        f"wrote {out} ({size} bytes)"
    )
