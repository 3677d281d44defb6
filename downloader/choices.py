"""The choices a download request is made of, in one place: engines, formats, the count.

The form, the commands, the settings and the engines all read these; nothing else
spells an engine name, a format or the count limit. No Django here: settings import it.
"""

from __future__ import annotations

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
