"""Cuts the connection of a download that runs past its deadline.

Socket timeouts bound each wait for bytes, not a whole response: a server that sends
one byte a second never trips them, in its headers or in its body. One watchdog
thread holds the deadline of every download in flight and shuts down the socket of
whichever is late, which ends the blocked read at once. Connections register
themselves (``WatchedHTTPConnection``) with the watch of the thread using them.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time

import urllib3.connection

_local = threading.local()


class Watch:
    """One download's deadline and the connection it is using."""

    __slots__ = ("active", "connection", "deadline", "fired")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.connection: object | None = None
        self.active = True
        self.fired = False

    def cut(self) -> None:
        sock = getattr(self.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def fire(self) -> None:
        self.fired = True
        self.cut()


class Watchdog:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watch]] = []
        self._cond = threading.Condition()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float) -> Watch:
        """Start watching; the calling thread's connections report to this watch."""
        watch = Watch(deadline)
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._order), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="imagedl-deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()
        _local.watch = watch
        return watch

    def release(self, watch: Watch) -> None:
        """The download is over (its entry leaves the heap when it comes up)."""
        watch.active = False
        watch.connection = None  # the entry may wait in the heap until its deadline
        if getattr(_local, "watch", None) is watch:
            _local.watch = None

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and not self._heap[0][2].active:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _, _, late = heapq.heappop(self._heap)
                late.fire()


WATCHDOG = Watchdog()


def _fresh_watchdog_in_child() -> None:
    global WATCHDOG
    WATCHDOG = Watchdog()  # the parent's thread (and maybe its lock) did not come along


os.register_at_fork(after_in_child=_fresh_watchdog_in_child)


def watchdog() -> Watchdog:
    return WATCHDOG


class _Reporting:
    """Mixed into urllib3's connections: tell the thread's watch which socket to cut."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._report()

    def request(self, *args, **kwargs):
        self._report()
        return super().request(*args, **kwargs)  # type: ignore[misc]

    def _report(self) -> None:
        watch = getattr(_local, "watch", None)
        if watch is not None:
            watch.connection = self
            if watch.fired:
                watch.cut()


class WatchedHTTPConnection(_Reporting, urllib3.connection.HTTPConnection):
    pass


class WatchedHTTPSConnection(_Reporting, urllib3.connection.HTTPSConnection):
    pass
