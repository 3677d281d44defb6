"""A rough duration estimate for a job, shown before submitting."""

from __future__ import annotations

BROWSER_START_S = 6.0
SECONDS_PER_RESULT_PAGE = 1.5  # one scroll batch of about 35 results
RESULTS_PER_PAGE = 35
SECONDS_PER_IMAGE_SLOT = 0.6  # one download, per parallel slot


def estimate_seconds(count: int, parallel: int = 16) -> int:
    pages = -(-count * 3 // 2 // RESULTS_PER_PAGE)  # about a third more candidates than images
    downloads = count / max(parallel, 1) * SECONDS_PER_IMAGE_SLOT
    return int(BROWSER_START_S + pages * SECONDS_PER_RESULT_PAGE + downloads + 2)
