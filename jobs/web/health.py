"""The state of what the app depends on, for /healthz and operators."""

from __future__ import annotations

import time
from typing import Any

from django.db import connections

from jobs.store.cassandra import ping


def _timed(check) -> dict[str, Any]:
    started = time.monotonic()
    try:
        detail = check()
        state = {"ok": True, **(detail or {})}
    except Exception as exc:
        state = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    state["ms"] = round((time.monotonic() - started) * 1000, 1)
    return state


def _relational() -> dict[str, Any]:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connections["default"].vendor}


def _cassandra() -> dict[str, Any]:
    return {"release_version": ping(timeout=2.0)}


def _queue_cluster() -> dict[str, Any]:
    from django_q.status import Stat

    clusters = [stat for stat in Stat.get_all() if stat.status != "Stopped"]
    if not clusters:
        raise RuntimeError("no django-q2 cluster has reported in")
    return {"clusters": len(clusters), "workers": sum(len(stat.workers) for stat in clusters)}


def health_report() -> dict[str, Any]:
    components = {
        "database": _timed(_relational),
        "cassandra": _timed(_cassandra),
        "queue": _timed(_queue_cluster),
    }
    return {"ok": all(c["ok"] for c in components.values()), "components": components}
