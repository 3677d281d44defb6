"""Reading a /metrics answer as a Prometheus server would: the text format parsed by
``prometheus_client``'s own parser, one value per (sample name, labels)."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset], float]


def samples_of(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(url: str, token: str = "") -> Samples:
    """The samples at ``url`` (a /metrics address); {} when it does not answer 200."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        answer = requests.get(url, headers=headers, timeout=10)
    except requests.RequestException:
        return {}
    return samples_of(answer.text) if answer.status_code == 200 else {}


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent: a counter not yet counted)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over every label set that includes ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)
