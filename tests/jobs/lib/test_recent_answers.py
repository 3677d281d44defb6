"""The status JSON's per-process memory: fresh answers reused, one refresher at a time."""

from __future__ import annotations

import threading
import time

from jobs.lib.recent import RecentAnswers


def test_a_fresh_answer_is_reused_and_an_old_one_recomputed():
    recent = RecentAnswers(max_age=0.2)
    calls = []

    def compute() -> bytes:
        calls.append(1)
        return f"answer {len(calls)}".encode()

    assert recent.get("job", compute) == b"answer 1"
    assert recent.get("job", compute) == b"answer 1"
    time.sleep(0.25)
    assert recent.get("job", compute) == b"answer 2"
    assert len(calls) == 2


def test_while_one_thread_refreshes_the_others_get_the_previous_answer():
    recent = RecentAnswers(max_age=0.05)
    recent.get("job", lambda: b"old")
    time.sleep(0.06)
    started, release = threading.Event(), threading.Event()

    def slow() -> bytes:
        started.set()
        release.wait(5)
        return b"new"

    refresher = threading.Thread(target=lambda: recent.get("job", slow))
    refresher.start()
    assert started.wait(5)
    others = [recent.get("job", lambda: b"second refresh") for _ in range(5)]
    release.set()
    refresher.join(5)
    assert others == [b"old"] * 5
    assert recent.get("job", lambda: b"unused") == b"new"


def test_missing_answers_are_not_remembered_and_the_memory_is_bounded():
    recent = RecentAnswers(max_age=60, size=3)
    assert recent.get("gone", lambda: None) is None
    assert recent.get("gone", lambda: b"back") == b"back"
    for key in ("a", "b", "c", "d"):
        recent.get(key, lambda k=key: k.encode())
    assert recent.get("gone", lambda: b"recomputed") == b"recomputed"  # evicted, oldest first
    assert recent.get("d", lambda: b"not called") == b"d"
