"""One writer at a time on SQLite, waiting in a queue instead of in SQLite's sleeps.

SQLite has one write lock for the whole file. A connection that finds it taken sleeps
in its busy handler (1, 2, 5, 10 ... then 100 ms at a time) and tries again, so under
load a transaction of about a millisecond waited up to 250 ms at the 99th percentile
and over a second at worst, although the lock was free again long before (bench_web,
the submission's schedule insert). ``database_write_turn()`` makes the web's writers
take turns before they begin: the threads of a process on a lock, the processes on an
``flock`` of a file beside the database; a waiter wakes as soon as the one before it
is done. Writers that do not take a turn (django-q2's own) still meet SQLite's busy
timeout as before. With another database (PostgreSQL) it does nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator

from django.db import connections

_thread_turn = threading.Lock()
_lock_file: dict[str, tuple[int, int]] = {}  # database path -> (pid, open file)


def _turn_file(database: str) -> int:
    """This process's own open lock file (one opened before a fork is the parent's:
    ``flock`` would not tell the two processes apart)."""
    pid, fd = _lock_file.get(database, (0, -1))
    if pid != os.getpid():
        fd = os.open(f"{database}.writelock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        _lock_file[database] = (os.getpid(), fd)
    return fd


@contextlib.contextmanager
def database_write_turn(using: str = "default") -> Iterator[None]:
    """Wait for this writer's turn on the database ``using`` (if it is SQLite), and
    hold it for the block: put around a write transaction, outside it."""
    settings = connections[using].settings_dict
    if settings["ENGINE"] != "django.db.backends.sqlite3":
        yield
        return
    name = str(settings["NAME"])
    with _thread_turn:
        if name == ":memory:" or "mode=memory" in name:  # this process's own database
            yield
            return
        fd = _turn_file(name)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
