"""Time zone choices for the form: every IANA zone, grouped by region."""

from __future__ import annotations

import zoneinfo
from functools import lru_cache


@lru_cache(maxsize=1)
def all_zones() -> frozenset[str]:
    return frozenset(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC")


def is_valid_zone(name: str) -> bool:
    return name in all_zones()


def _choices() -> list:
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(all_zones()):
        region = name.split("/", 1)[0] if "/" in name else "Other"
        if region in ("Etc", "SystemV", "US", "Canada", "Mexico", "Brazil", "Chile"):
            continue  # legacy aliases; the canonical zones are listed under their regions
        groups.setdefault(region, []).append((name, name.replace("_", " ")))
    return [("UTC", "UTC")] + [
        (region, zones) for region, zones in sorted(groups.items()) if region != "Other"
    ]


ZONE_CHOICES = _choices()


@lru_cache(maxsize=64)
def zone_options_html(selected: str) -> str:
    from django.utils.html import escape

    def option(value: str, label: str) -> str:
        mark = " selected" if value == selected else ""
        return f'<option value="{escape(value)}"{mark}>{escape(label)}</option>'

    parts = []
    for value, label in ZONE_CHOICES:
        if isinstance(label, list):
            parts.append(f'<optgroup label="{escape(value)}">')
            parts += [option(v, lbl) for v, lbl in label]
            parts.append("</optgroup>")
        else:
            parts.append(option(value, label))
    return "".join(parts)
