"""django-q2 entry points of the downloader: load the job, run the pipeline."""

from __future__ import annotations


def job_run(job_id: str) -> str:
    """Run a scheduled job (the only argument is its id; nothing personal)."""
    from downloader.pipeline import run_job

    return run_job(job_id)
