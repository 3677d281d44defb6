"""A rough duration estimate for a job, shown before submitting."""

from __future__ import annotations

BROWSER_START_S = 6.0
SECONDS_PER_RESULT_PAGE = 1.5  # one scroll batch of about 35 results
RESULTS_PER_PAGE = 35
SECONDS_PER_IMAGE_SLOT = 0.6  # one download, per parallel slot
PARALLEL = 16
OVERHEAD_S = 2.0


def estimate_model() -> dict[str, float]:
    """The figures of ``estimate_seconds``, for the form's script to show the same."""
    return {
        "browser_start": BROWSER_START_S,
        "per_page": SECONDS_PER_RESULT_PAGE,
        "results_per_page": RESULTS_PER_PAGE,
        "per_slot": SECONDS_PER_IMAGE_SLOT,
        "parallel": PARALLEL,
        "overhead": OVERHEAD_S,
    }


def estimate_seconds(count: int, parallel: int = PARALLEL) -> int:
    pages = -(-count * 3 // 2 // RESULTS_PER_PAGE)  # about a third more candidates than images
    downloads = count / max(parallel, 1) * SECONDS_PER_IMAGE_SLOT
    return int(BROWSER_START_S + pages * SECONDS_PER_RESULT_PAGE + downloads + OVERHEAD_S)
