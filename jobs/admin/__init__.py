"""The Django admin of jobs, recurring series and API keys (registered on import)."""

from jobs.admin import api_keys, jobs, series

__all__ = ["api_keys", "jobs", "series"]
