"""What a run writes while it downloads, coalesced: its progress and its kept images.

A 50-image job used to send a conditional write of its counters every half second and
one insert per kept image. ``RunWrites`` holds both and writes them together in a
*flush*, at most once every ``PROGRESS_EVERY`` seconds (the first at once), or sooner
when ``IMAGE_BATCH`` images wait:

1. the progress counters, in one lightweight transaction conditional on the run's id
   and the job running (``services.job_record_progress``): the fence of the flush.
   When it is refused the job names another run (or none) or was cancelled: the run is
   told (``on_lost``; ``job.status`` says which), and the images waiting are dropped
   unwritten. Applied, it stands for the run's cancel check (``confirmed_at``), and
   once the lease is ``lease_every`` old it renews the lease too (``lease_renewed_at``:
   the run's lease keeper then sends no renewal of its own);
2. then the images waiting, in one request (``services.job_add_images``: one unlogged
   batch of the job's partition, rows keyed by the run's id).

``downloaded_count`` is the number of images whose rows were stored by an earlier
flush, so the job row never counts an image a later run could not adopt. Whatever
waits at the end is handed to the outcome: ``finish`` stores the images waiting (the
outcome's own conditional write, ``job_complete``, fences that step) and returns the
counters, which the outcome writes with the final status. A run that dies between
flushes loses at most the images of one flush: their files stay in its work folder
without rows, so the run that takes over does not adopt them and fetches them again.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from jobs.core import services
from jobs.models import Job

PROGRESS_EVERY = 1.0  # seconds between flushes (progress and image rows)
# A flush as soon as this many images wait: a cap on one request's size, reached only
# by a run keeping more than that a second (every flush costs a lightweight transaction).
IMAGE_BATCH = 100


class RunWrites:
    """The pending writes of the run ``job.run_id``; safe to use from several threads
    (the engines' events and the collector's callbacks come from different ones).

    ``lost()`` says whether the run knows it lost its job (nothing is written then);
    ``on_lost()`` is called when a flush finds it out."""

    def __init__(
        self,
        job: Job,
        *,
        lost: Callable[[], bool],
        on_lost: Callable[[], None],
        every: float = PROGRESS_EVERY,
        batch: int = IMAGE_BATCH,
        lease_every: float = math.inf,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job = job
        self._lost, self._on_lost = lost, on_lost
        self._every, self._batch, self._clock = every, batch, clock
        self._lease_every = lease_every
        self._lock = threading.Lock()
        self._progress: dict[str, int | str] = {}  # changed since the last flush
        self._written: dict[str, int | str] = {}  # as the last flush wrote them
        self._images: dict[int, dict[str, object]] = {}  # position -> columns, waiting
        self._stored: set[int] = set()  # positions whose rows are stored
        self._last = -math.inf
        # When a flush last found the job running and the run's own (``clock``'s time):
        # the run need not read the job to learn it was not cancelled meanwhile.
        self.confirmed_at = -math.inf
        # When the run's lease was last renewed by a flush (else its claim's time): a
        # flush renews it when it is ``lease_every`` old, so the lease keeper need not.
        self.lease_renewed_at = clock()

    def progress(self, **fields: int | str) -> None:
        """New values of progress fields (not ``downloaded_count``: see the module)."""
        with self._lock:
            self._progress.update(fields)
            self._flush_if_due()

    def image(self, position: int, fields: dict[str, object]) -> None:
        """An image kept at ``position`` (a later one at the same position replaces it)."""
        with self._lock:
            self._images[position] = fields
            self._flush_if_due()

    def adopted(self, rows: dict[int, dict[str, object]]) -> None:
        """Images taken over from an earlier run, stored at once (the claim that just
        succeeded fences this step)."""
        with self._lock:
            services.job_add_images(self.job, rows)
            self._stored.update(rows)

    @property
    def stored(self) -> int:
        return len(self._stored)

    def finish(self) -> dict[str, int | str]:
        """Store the images waiting, unless the run knows it lost the job, and return
        the progress not written yet, for the outcome's conditional write."""
        with self._lock:
            images, self._images = self._images, {}
            progress, self._progress = self._progress, {}
            if self._lost():
                return {}
            if images:
                services.job_add_images(self.job, images)
                self._stored.update(images)
            return {**progress, "downloaded_count": len(self._stored)}

    def _flush_if_due(self) -> None:
        now = self._clock()
        if now - self._last >= self._every or len(self._images) >= self._batch:
            self._flush(now)

    def _flush(self, now: float) -> None:
        fields = {**self._written, **self._progress, "downloaded_count": len(self._stored)}
        if fields == self._written and not self._images:
            return  # nothing new
        if self._lost():
            self._progress.clear()
            self._images.clear()
            return
        self._last = now
        changed = {name: value for name, value in fields.items() if self._written.get(name) != value}
        changed = changed or {"downloaded_count": len(self._stored)}  # images alone: the fence
        renew = now - self.lease_renewed_at >= self._lease_every
        if not services.job_record_progress(self.job, renew_lease=renew, **changed):
            self._progress.clear()
            self._images.clear()
            self._on_lost()
            return
        self._written, self._progress = fields, {}
        self.confirmed_at = now
        if renew:
            self.lease_renewed_at = now
        if self._images:
            images, self._images = self._images, {}
            services.job_add_images(self.job, images)
            self._stored.update(images)
