"""What a log line is about: ``job_id``, ``run_id``, ``series_id`` and ``task``, bound
once where a task starts (``log_context``) or learns more (``log_context_bind``), and
added to every record by ``LogContextFilter``, so no call passes them by hand.

The JSON format (``IMAGEDL_LOG_FORMAT=json``) writes them as fields; the plain text
format keeps its own words (event lines name their job). A worker process runs one
task at a time, so a task's fields also stand for the process (``whole_process``):
threads the run starts (the collector's, the lease keeper's) log with them too.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

FIELDS = ("job_id", "run_id", "series_id", "task")

_bound: ContextVar[dict[str, str] | None] = ContextVar("imagedl_log_context", default=None)
_process: dict[str, str] = {}


def _clean(fields: dict[str, object]) -> dict[str, str]:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"not log context fields: {sorted(unknown)}")
    return {name: str(value) for name, value in fields.items() if value not in (None, "")}


@contextmanager
def log_context(*, whole_process: bool = False, **fields: str | uuid.UUID | None) -> Iterator[None]:
    """Within the block, every log record carries ``fields`` (and those bound around it)."""
    merged = {**(_bound.get() or {}), **_clean(fields)}
    token = _bound.set(merged)
    if whole_process:
        _process.clear()
        _process.update(merged)
    try:
        yield
    finally:
        _bound.reset(token)
        if whole_process:
            _process.clear()


def log_context_bind(**fields: str | uuid.UUID | None) -> None:
    """Add to the fields of the enclosing ``log_context`` (a run learns its run id)."""
    current = _bound.get()
    if current is None:
        return  # not inside a task: nothing to add to
    current.update(_clean(fields))
    if _process and _process.get("task") == current.get("task"):
        _process.update(current)


def log_context_fields() -> dict[str, str]:
    """The fields bound here (or, in a thread without its own, in the process's task)."""
    return dict(_bound.get() or _process)


class LogContextFilter(logging.Filter):
    """Sets the bound fields on each record (a field the call gave itself is kept)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in log_context_fields().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
