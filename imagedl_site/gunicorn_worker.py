"""gunicorn's threaded worker, taking a new connection only while one of its threads
is free (``worker_class`` in ``imagedl_site.gunicorn_conf``).

gunicorn's ``gthread`` worker accepts every connection it sees and queues it behind
its threads, however many requests wait there already: the process that wakes first
takes a burst of connections (all 50 of a benchmark's keep-alive clients, measured),
its requests wait for its 4 threads and its one interpreter lock while the other
processes idle, and one garbage collection pause stalls them all. This worker stops
listening while all its threads are busy, so a new connection waits in the kernel's
queue, shared by every process, for the first one with a free thread. A kept-alive
connection stays with the process that accepted it (gunicorn cannot move it).
"""

from __future__ import annotations

from gunicorn.workers.gthread import ThreadWorker


class FreeThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.busy_threads = 0  # requests handed to the pool, not finished; main thread only

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled and self.busy_threads < self.cfg.threads)

    def enqueue_req(self, conn) -> None:
        self.busy_threads += 1
        super().enqueue_req(conn)
        if self.busy_threads >= self.cfg.threads:
            self.set_accept_enabled(False)

    def finish_request(self, conn, fs) -> None:
        self.busy_threads -= 1
        super().finish_request(conn, fs)
        # No sooner than here: finish_request may hand the connection straight back.
        self.set_accept_enabled(self.alive and self.nr_conns < self.worker_connections)
