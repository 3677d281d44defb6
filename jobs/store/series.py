"""Reading recurring series: the selectors every layer above may use, and how a series
reads to people (its rhythm, why it stopped)."""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings

from jobs.models import Job, Series, SeriesEvery, SeriesImage, SeriesList, SeriesRun

# Why a series stopped, in words (its page, the admin). The first two send a mail.
STOP_REASONS = {
    "max_runs": "it ran {max_runs} times, the most a series runs",
    "nothing_new": "{max_empty} runs in a row found nothing new",
    "user": "you stopped it",
    "operator": "an operator stopped it",
    "unsubscribed": "the address asked never to be emailed again",
    "not_scheduled": "its first run could not be scheduled",
    "unconfirmed": "it was never confirmed",
    "mail_capped": "two runs in a row, the address had had its day's share of our emails",
    "address_refused": "the mail server refused the address",
    "last_day": "it reached the last day you chose",
}

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def run_job_id(series_id: uuid.UUID, run: int) -> uuid.UUID:
    """The id of a series' n-th run: the same whoever computes it."""
    return uuid.uuid5(series_id, f"run-{run}")


def series_get(series_id: uuid.UUID | str | None) -> Series | None:
    if series_id is None:
        return None
    try:
        key = series_id if isinstance(series_id, uuid.UUID) else uuid.UUID(str(series_id))
    except ValueError:
        return None
    return Series.objects.filter(id=key).first()


def stop_reason_text(series: Series) -> str:
    template = STOP_REASONS.get(series.stop_reason or "", series.stop_reason or "")
    return template.format(
        max_runs=settings.IMAGEDL_SERIES_MAX_RUNS, max_empty=settings.IMAGEDL_SERIES_MAX_EMPTY_RUNS
    )


def rhythm_text(series: Series) -> str:
    """ "every day at 09:00 (Europe/Paris)", "every Monday at ..."."""
    if series.every == SeriesEvery.WEEK and series.weekday is not None:
        when = f"every {WEEKDAYS[series.weekday]}"
    else:
        when = "every day"
    return f"{when} at {series.local_time} ({series.time_zone})"


def series_promise(series: Series) -> str:
    """What a series promises, in one sentence: "Every day at 09:00 (UTC) until you stop
    it, at most 52 times" (or "until 3 March 2027 or until you stop it")."""
    end = "until you stop it"
    if series.last_day is not None:
        day = series.last_day if isinstance(series.last_day, dt.date) else series.last_day.date()
        end = f"until {day.day} {day:%B %Y} or until you stop it"
    rhythm = rhythm_text(series)
    return f"{rhythm[0].upper()}{rhythm[1:]} {end}, at most {settings.IMAGEDL_SERIES_MAX_RUNS} times"


def repeat_word(series: Series) -> str:
    """ "daily" or "weekly"."""
    return "weekly" if series.every == SeriesEvery.WEEK else "daily"


def series_history(series_id: uuid.UUID) -> list[tuple[str, str, str]]:
    """What the series delivered: ``(sha256, signature, method)`` rows."""
    rows = SeriesImage.objects.filter(series_id=series_id).limit(None)
    return [(row.sha256, row.phash or "", row.method) for row in rows]


def series_runs(series_id: uuid.UUID) -> list[tuple[SeriesRun, Job | None]]:
    """The series' runs, newest first, each with its job (None once gone)."""
    rows = list(SeriesRun.objects.filter(series_id=series_id).limit(None))
    jobs = {job.id: job for job in Job.objects.filter(id__in=[r.job_id for r in rows])} if rows else {}
    return [(row, jobs.get(row.job_id)) for row in reversed(rows)]


def series_list(limit: int = 200) -> list[Series]:
    """The newest series (the admin's list), from the one small listing partition."""
    rows = list(SeriesList.objects.filter(bucket="all").limit(limit))
    found = {s.id: s for s in Series.objects.filter(id__in=[r.series_id for r in rows])} if rows else {}
    return [found[r.series_id] for r in rows if r.series_id in found]
