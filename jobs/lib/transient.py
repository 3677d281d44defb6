"""Which failures pass: a dependency that did not answer this time (Cassandra, the
browser starting), as opposed to a bug or bad input. The job run steps back and is
queued again after such a failure instead of failing the job."""

from __future__ import annotations


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a passing fault of a dependency."""
    from cassandra import OperationTimedOut, RequestExecutionException
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionException

    from downloader.browser import BrowserStartFailed

    passing = (
        NoHostAvailable,
        OperationTimedOut,
        RequestExecutionException,  # Unavailable, read and write timeouts, ...
        ConnectionException,
        BrowserStartFailed,
    )
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, passing) or _cqlengine_not_connected(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def transient_cause(exc: BaseException) -> str:
    """What did not answer, as a metrics label: ``browser`` or ``cassandra``."""
    from downloader.browser import BrowserStartFailed

    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        if isinstance(current, BrowserStartFailed):
            return "browser"
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return "cassandra" if is_transient(exc) else "other"


def _cqlengine_not_connected(exc: BaseException) -> bool:
    """cqlengine's own error when no session could be made (the node was down at
    connect time)."""
    from cassandra.cqlengine import CQLEngineException
    from cassandra.cqlengine.query import LWTException

    if not isinstance(exc, CQLEngineException) or isinstance(exc, LWTException):
        return False
    text = str(exc).lower()
    return "setup()" in text or "connection" in text or "session" in text
