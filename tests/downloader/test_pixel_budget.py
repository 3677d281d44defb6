"""Large decodes take turns within the process's pixel budget (a memory bound)."""

from __future__ import annotations


def test_the_pixel_budget_lets_large_decodes_take_turns():
    import threading
    import time
    from functools import partial

    from downloader.validation import PixelBudget
    from tests.racing import race_each

    budget = PixelBudget(100)
    inside, most = [0], [0]
    lock = threading.Lock()

    def decode(pixels: int) -> None:
        with budget.hold(pixels):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    race_each([partial(decode, 60)] * 4 + [partial(decode, 500)])  # 500: larger than the budget, alone
    assert most[0] == 1  # two images of 60 never fit in 100 together
    assert budget.peak == 100 and budget.used == 0
