"""How the imitations read each engine's filter parameters, in the real sites' words
(shared/design/engines.md): Bing's ``qft`` (``+filterui:aspect-wide``...), Google's
``tbs`` (``iar:w,itp:animated``...) and DuckDuckGo's ``f`` (``layout:Wide,type:gif``...).
Each returns what was asked as ``{kind: value}`` in downloader.choices' terms, so a test
can see a filter reached the engine, and the imitation can leave out what does not match.
Written apart from the engine modules on purpose: a wrong word there is not read here.
"""

from __future__ import annotations

# Bing: +filterui:<group>-<value>
_BING_GROUPS = {
    "aspect": "layout",
    "licenseType": "license",
    "license": "license",
    "photo": "type",
    "imagesize": "size",
    "color2": "colour",
    "age": "freshness",
}
_BING_VALUES = {
    ("license", "Any"): "cc",
    ("license", "L1"): "public",
    ("type", "animatedgif"): "animated",
    ("type", "linedrawing"): "line",
    ("freshness", "lt1440"): "day",
    ("freshness", "lt10080"): "week",
    ("freshness", "lt43200"): "month",
}


def bing_filters(qft: str) -> dict[str, str]:
    asked = {}
    for piece in qft.split("+filterui:"):
        group, _, value = piece.partition("-")
        kind = _BING_GROUPS.get(group)
        if not kind or value.startswith("custom_"):
            continue
        if kind == "colour" and value.startswith("FGcls_"):
            value = value.removeprefix("FGcls_").lower()
        asked[kind] = _BING_VALUES.get((kind, value), value)
    return asked


# Google: comma-separated key:value pairs of tbs.
_GOOGLE = {
    "iar": ("layout", {"s": "square", "w": "wide", "t": "tall"}),
    "il": ("license", {"cl": "cc"}),
    "itp": ("type", {"photo": "photo", "clipart": "clipart", "lineart": "line", "animated": "animated"}),
    "isz": ("size", {"l": "large"}),
    "ic": ("colour", {"color": "color", "gray": "bw"}),
    "isc": ("colour", {}),  # after ic:specific: the colour's own name
    "qdr": ("freshness", {"d": "day", "w": "week", "m": "month"}),
}


def google_filters(tbs: str) -> dict[str, str]:
    asked = {}
    for pair in filter(None, tbs.split(",")):
        key, _, value = pair.partition(":")
        if key not in _GOOGLE or value == "specific":
            continue
        kind, words = _GOOGLE[key]
        asked[kind] = words.get(value, value)
    return asked


# DuckDuckGo: f=time:,size:,type:,layout:,color:,license:
_DDG_SLOTS = {"time": "freshness", "size": "size", "type": "type", "layout": "layout", "color": "colour"}
_DDG_VALUES = {
    ("license", "Any"): "cc",
    ("license", "Public"): "public",
    ("type", "gif"): "animated",
    ("colour", "Monochrome"): "bw",
}


def ddg_filters(f: str) -> dict[str, str]:
    asked = {}
    for pair in filter(None, f.split(",")):
        slot, _, value = pair.partition(":")
        kind = _DDG_SLOTS.get(slot) or ("license" if slot == "license" else "")
        if kind and value:
            asked[kind] = _DDG_VALUES.get((kind, value), value.lower())
    return asked
