"""The choices a download request is made of, in one place: engines, formats, safe search,
engine filters, the count, the layout it is packed in.

The form, the commands, the settings and the engines all read these; nothing else
spells an engine name, a format or the count limit. No Django here: settings import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

AUTO = "auto"  # one engine at a time, in the configured order, the next when one fails
ALL = "all"  # every engine in turn, for more variety than one engine gives
# Search engines, in the default fallback order, with the names users see.
ENGINE_LABELS: dict[str, str] = {"bing": "Bing", "duckduckgo": "DuckDuckGo", "google": "Google"}
ENGINES: tuple[str, ...] = tuple(ENGINE_LABELS)
ENGINE_CHOICES: list[tuple[str, str]] = [
    (AUTO, "Automatic"),
    (ALL, "All engines (more variety)"),
    *ENGINE_LABELS.items(),
]
ENGINE_OPTIONS: tuple[str, ...] = tuple(value for value, _ in ENGINE_CHOICES)  # what a request may name

# Formats a user may ask for (and convert to); the validator may recognise more.
FORMAT_LABELS: dict[str, str] = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP", "gif": "GIF"}
FORMATS: frozenset[str] = frozenset(FORMAT_LABELS)
FORMAT_CHOICES: list[tuple[str, str]] = list(FORMAT_LABELS.items())

# Safe search, as every engine is asked for it (each in its own words, in its module).
SAFE_SEARCH_LABELS: dict[str, str] = {"strict": "Strict", "moderate": "Moderate", "off": "Off"}
SAFE_SEARCH: tuple[str, ...] = tuple(SAFE_SEARCH_LABELS)
SAFE_SEARCH_CHOICES: list[tuple[str, str]] = list(SAFE_SEARCH_LABELS.items())
SAFE_SEARCH_DEFAULT = "moderate"

# The dominant colours every engine offers (Bing, DuckDuckGo and Google share this list).
DOMINANT_COLOURS: tuple[str, ...] = (
    "red",
    "orange",
    "yellow",
    "green",
    "teal",
    "blue",
    "purple",
    "pink",
    "brown",
    "black",
    "gray",
    "white",
)

# Engine filters: each kind's values (its names users see), "" meaning any. Each engine
# module says how it asks for them (and which it cannot); downloader.validation checks
# what the pixels can tell (layout, animated) after the download.
FILTER_VALUES: dict[str, dict[str, str]] = {
    "license": {"cc": "Creative Commons", "public": "Public domain"},
    "colour": {
        "color": "Colour",
        "bw": "Black and white",
        **{name: name.capitalize() for name in DOMINANT_COLOURS},
    },
    "layout": {"square": "Square", "wide": "Wide", "tall": "Tall"},
    "size": {"large": "Large", "wallpaper": "Wallpaper"},
    "type": {"photo": "Photo", "clipart": "Clip art", "line": "Line drawing", "animated": "Animated"},
    "freshness": {"day": "Past day", "week": "Past week", "month": "Past month"},
}
FILTER_KINDS: tuple[str, ...] = tuple(FILTER_VALUES)
FILTER_LABELS: dict[str, str] = {
    "license": "License",
    "colour": "Colour",
    "layout": "Layout",
    "size": "Size",
    "type": "Type",
    "freshness": "Freshness",
}
ANY = "any"  # what a command line may say for "no filter"


@dataclass(frozen=True)
class Filters:
    """One request's engine filters; "" is any. Build them with ``parse_filters``."""

    license: str = ""
    colour: str = ""
    layout: str = ""
    size: str = ""
    type: str = ""
    freshness: str = ""

    def chosen(self) -> dict[str, str]:
        """The filters set, kind -> value, in FILTER_KINDS order."""
        return {kind: getattr(self, kind) for kind in FILTER_KINDS if getattr(self, kind)}

    def __bool__(self) -> bool:
        return bool(self.chosen())

    def as_text(self) -> str:
        """``"layout=wide;license=cc"`` (the manifest's column), "" when none is set."""
        return ";".join(f"{kind}={value}" for kind, value in self.chosen().items())

    @classmethod
    def from_stored(cls, values: Mapping[str, str | None]) -> Filters:
        """Filters read back from storage, kind -> value: a kind or value no longer
        offered counts as any."""
        return cls(**{k: v for k, v in values.items() if k in FILTER_VALUES and v in FILTER_VALUES[k]})

    def describe(self) -> str:
        """``"Layout: Wide; Freshness: Past week"``, or "" when none is set."""
        return "; ".join(f"{FILTER_LABELS[k]}: {FILTER_VALUES[k][v]}" for k, v in self.chosen().items())


def parse_filter(kind: str, text: str | None) -> str:
    """One filter's value from user text (any case; "", "any" or None: no filter);
    raises ValueError naming the choices."""
    value = (text or "").strip().lower()
    if kind == "colour":
        value = {"colour": "color", "grey": "gray", "black-and-white": "bw", "blackandwhite": "bw"}.get(
            value, value
        )
    if value in ("", ANY):
        return ""
    if value not in FILTER_VALUES[kind]:
        raise ValueError(f"{kind} {text!r}: choose from {', '.join(FILTER_VALUES[kind])}")
    return value


def parse_filters(values: Mapping[str, str | None]) -> Filters:
    """Filters from ``{kind: text}`` (missing kinds: any); raises ValueError."""
    unknown = set(values) - set(FILTER_KINDS)
    if unknown:
        raise ValueError(f"unknown filters: {', '.join(sorted(unknown))}")
    return Filters(**{kind: parse_filter(kind, values.get(kind)) for kind in FILTER_KINDS})


# How a delivery is packed: the layout at the root of its one zip (downloader.layouts).
PACK_LABELS: dict[str, str] = {
    "zip": "Zip of images",
    "imagefolder": "Image folder (Hugging Face)",
    "parquet": "Parquet (Hugging Face)",
    "webdataset": "WebDataset shards",
}
PACKS: tuple[str, ...] = tuple(PACK_LABELS)
PACK_CHOICES: list[tuple[str, str]] = list(PACK_LABELS.items())
PACK_DEFAULT = "zip"
DEFAULT_SHARD_MB = 256  # a WebDataset shard's largest size


MIN_COUNT = 1
MAX_COUNT = 500  # images one request may ask for


def parse_formats(text: str) -> frozenset[str]:
    """``"jpg, PNG"`` -> {"jpeg", "png"}; raises ValueError naming what is unknown."""
    chosen = {part.strip().lower().replace("jpg", "jpeg") for part in text.split(",") if part.strip()}
    unknown = chosen - FORMATS
    if unknown:
        raise ValueError(f"unknown {', '.join(sorted(unknown))}; choose from {', '.join(sorted(FORMATS))}")
    return frozenset(chosen)


def parse_min_size(text: str) -> tuple[int, int]:
    """``"800x600"`` -> (800, 600); raises ValueError for anything else."""
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise ValueError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 800x600")
    return int(width), int(height)


def check_engine_order(names: list[str]) -> list[str]:
    """The configured fallback order; raises ValueError for an unknown engine."""
    unknown = set(names) - set(ENGINES)
    if unknown:
        raise ValueError(f"unknown engines: {', '.join(sorted(unknown))}")
    return list(names)
