"""README.md of a delivery: a Hugging Face dataset card (a YAML header of the card's
fields, then a plain summary). The query and the captions come from strangers: the
header is written by a YAML dumper, the summary's text is escaped."""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import yaml

from downloader.choices import ENGINE_LABELS, FILTER_VALUES
from downloader.layouts import IMAGEFOLDER_METADATA, PARQUET_FOLDER, SHARD_FOLDER

CARD_NAME = "README.md"
LAYOUT_WORDS = {
    "zip": "the images at the root, described by `manifest.csv` and `manifest.jsonl`",
    "imagefolder": (
        "a Hugging Face image folder: the images and `metadata.jsonl` "
        '(`datasets.load_dataset("imagefolder", data_dir=...)` loads them with their captions as `text`)'
    ),
    "parquet": (
        f"Parquet files under `{PARQUET_FOLDER}/` with an `image` column "
        "(the Hugging Face Image feature: `bytes` and `path`) and every manifest field"
    ),
    "webdataset": (
        f"WebDataset tar shards under `{SHARD_FOLDER}/`: per sample `<key>.<ext>`, "
        "`<key>.json` (its manifest row) and `<key>.txt` (its caption)"
    ),
}
DATA_FILES = {
    "parquet": f"{PARQUET_FOLDER}/train-*.parquet",
    "webdataset": f"{SHARD_FOLDER}/*.tar",
    "imagefolder": ["*.jpg", "*.png", "*.webp", "*.gif", "*.bmp", "*.tif", IMAGEFOLDER_METADATA],
}


@dataclass(frozen=True)
class CardFacts:
    """What the card says beyond the rows: the layout, what was asked (a query, a page
    URL, or "" for a URL list), the search's safe search and filters."""

    layout: str
    subject: str = ""
    from_page: bool = False
    safe_search: str = ""
    filters: str = ""


def size_category(count: int) -> str:
    """The Hugging Face size category of ``count`` rows."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if count < limit:
            return name
    return "100K<n<1M"


def license_filter(filters: str) -> str:
    """The license filter the engines were asked for, in words ("Creative Commons"), or
    "" (``filters``: ``Filters.as_text()``)."""
    chosen = dict(pair.split("=", 1) for pair in filters.split(";") if "=" in pair)
    return FILTER_VALUES["license"].get(chosen.get("license", ""), "")


def license_summary(rows: Sequence[Mapping[str, object]], filters: str) -> str:
    """The images' licenses in a sentence: how many state which, and the engine's
    license filter (a filter, never an image's license)."""
    stated = Counter(str(row.get("license") or "") for row in rows)
    none = stated.pop("", 0)
    parts = [f"{count} state {name}" for name, count in stated.most_common(5)]
    if len(stated) > 5:
        parts.append(f"{sum(c for _, c in stated.most_common()[5:])} state other licenses")
    text = (
        f"Of {len(rows)} images, " + ", ".join(parts) + f", {none} state none."
        if parts
        else f"None of the {len(rows)} images states a license."
    )
    filtered = license_filter(filters)
    if filtered:
        text += f" The engines were asked for {filtered} images (filtered: {filtered}): not a license."
    return text + " Each image belongs to its publisher: check its rights before use (CREDITS.html)."


def dataset_card(rows: Sequence[Mapping[str, object]], facts: CardFacts, today: dt.date | None = None) -> str:
    """README.md for ``rows`` (the delivery's manifest rows)."""
    today = today or dt.datetime.now(dt.UTC).date()
    engines = sorted({str(row.get("engine") or "") for row in rows} - {""})
    licensed = any(row.get("license") for row in rows)
    header: dict[str, object] = {
        "pretty_name": (facts.subject or "imagedl images")[:100],
        "license": "other" if licensed else "unknown",
        **({"license_name": "per-image", "license_link": "CREDITS.html"} if licensed else {}),
        "task_categories": ["image-to-text", "text-to-image"],
        "size_categories": [size_category(len(rows))],
        "tags": ["imagedl", "image-text pairs"],
        "source_query": "" if facts.from_page else facts.subject,
        "source_page": facts.subject if facts.from_page else "",
        "source_engines": engines,
        "collected_on": today.isoformat(),
    }
    if facts.layout in DATA_FILES:
        header["configs"] = [
            {"config_name": "default", "data_files": [{"split": "train", "path": DATA_FILES[facts.layout]}]}
        ]
    front = yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n\n" + _summary(rows, facts, engines, today)


def _summary(
    rows: Sequence[Mapping[str, object]], facts: CardFacts, engines: list[str], today: dt.date
) -> str:
    esc = html.escape
    if facts.from_page:
        asked = f"the images of the page {esc(facts.subject)}"
    elif facts.subject:
        asked = f"a search for “{esc(facts.subject)}”"
    else:
        asked = "a list of image URLs"
    found_by = ", ".join(ENGINE_LABELS.get(name, name) for name in engines) or "no search engine"
    captioned = sum(1 for row in rows if row.get("caption"))
    lines = [
        f"# {esc(facts.subject or 'imagedl images')}",
        "",
        f"{len(rows)} images from {asked}, found by {found_by}, collected on {today.isoformat()} by imagedl.",
        f"{captioned} of them have a caption (the engine's title, or the page's alt text, "
        "figure caption or title).",
        "",
        f"Layout: {LAYOUT_WORDS[facts.layout]}. `manifest.csv` lists every image with the fields of "
        "the manifest schema (size in pixels, format, bytes, sha256, a perceptual hash, source and page "
        "URLs, caption, license, engine, rank, safe search).",
        "",
        f"Licenses: {esc(license_summary(rows, facts.filters))}",
    ]
    if facts.safe_search:
        lines.append(f"Safe search: {esc(facts.safe_search)}.")
    if facts.filters:
        lines.append(f"Engine filters: {esc(facts.filters)}.")
    return "\n".join(lines) + "\n"
