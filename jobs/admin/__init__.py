"""The Django admin of jobs and recurring series (both registered on import)."""

from jobs.admin import jobs, series

__all__ = ["jobs", "series"]
