"""The file cache, with rate-limit counters that are never culled while they live.

Django's file cache culls when it holds MAX_ENTRIES files (300 by default): it drops
a random third of them, live rate-limit counters included, so ordinary traffic from a
few hundred clients handed everyone a fresh allowance. Here counters get file names of
their own (``rl-<md5>.djcache``); a cull first deletes what has expired and then a
random share of the other entries only. ``clear()`` still removes everything (tests).

With more than one machine use Redis instead (``REDIS_URL`` switches the cache to
``django.core.cache.backends.redis.RedisCache``), with an eviction policy that spares
keys whose TTL has not run out (``noeviction`` or ``volatile-ttl``).
"""

from __future__ import annotations

import os
import random
import time
from hashlib import md5

from django.core.cache.backends.filebased import FileBasedCache

COUNTER_PREFIX = "rl:"  # cache keys of rate-limit counters (jobs.lib.ratelimit)
COUNTER_FILE_PREFIX = "rl-"
SWEEP_EVERY = 30.0  # seconds between two sweeps of expired files in one process


class FileCache(FileBasedCache):
    _last_sweep = 0.0

    def _key_to_file(self, key, version=None):
        if not key.startswith(COUNTER_PREFIX):
            return super()._key_to_file(key, version)
        full_key = self.make_and_validate_key(key, version=version)
        name = md5(full_key.encode(), usedforsecurity=False).hexdigest()
        return os.path.join(self._dir, f"{COUNTER_FILE_PREFIX}{name}{self.cache_suffix}")

    def _cull(self) -> None:
        files = self._list_cache_files()
        if len(files) < self._max_entries:
            return
        now = time.monotonic()
        if now - self._last_sweep >= SWEEP_EVERY:
            self._last_sweep = now
            for name in files:
                try:
                    with open(name, "rb") as handle:
                        self._is_expired(handle)  # deletes the file when it has expired
                except FileNotFoundError:
                    pass
            files = self._list_cache_files()
            if len(files) < self._max_entries:
                return
        others = [name for name in files if not os.path.basename(name).startswith(COUNTER_FILE_PREFIX)]
        if self._cull_frequency == 0:
            doomed = others
        else:
            doomed = random.sample(others, int(len(others) / self._cull_frequency))
        for name in doomed:
            self._delete(name)
