"""POST /jobs: the JSON request checked by the web form, then the form's verbs.

The form (``jobs.web.forms.JobForm``) is the one source of validation: the JSON is
turned into the fields it takes (``run_at`` and ``time_zone`` into a date and a time in
that zone), and its errors come back as the problem's field errors. The limits of
the form apply too: per client address, per mailbox, and the series' own.
"""

from __future__ import annotations

import uuid
import zoneinfo

from django.http import HttpRequest
from django.utils import timezone

from downloader.choices import FILTER_KINDS
from jobs.api.auth import retry_after
from jobs.api.problems import ApiProblem
from jobs.api.schemas import JobIn
from jobs.core import services
from jobs.core.webhooks import webhook_catch_up
from jobs.lib.mailboxes import mailbox_key
from jobs.lib.ratelimit import allow, client_address, client_key, configured_rate
from jobs.lib.timezones import is_valid_zone
from jobs.models import ApiKey, Job
from jobs.series.limits import series_limit_reached
from jobs.series.services import series_submit
from jobs.store import records
from jobs.store.api_keys import idempotency_claim, idempotency_set
from jobs.store.webhooks import webhook_target_set
from jobs.web.forms import REPEAT_NEVER, JobForm, check_public_url

# Form fields that the JSON names differently.
FIELD_NAMES = {"run_date": "run_at", "run_time": "run_at", "count": "count", "__all__": "body"}
MAX_URL = 2000
MAX_IDEMPOTENCY_KEY = 200


def form_data(payload: JobIn, email: str) -> dict[str, object]:
    """The JSON request as the web form's fields (with the key's mailbox as email)."""
    zone_name = payload.time_zone if is_valid_zone(payload.time_zone) else "UTC"
    when = payload.run_at or timezone.now()
    if when.tzinfo is None:
        raise ApiProblem(
            422, "run_at needs a UTC offset.", errors={"run_at": ["Give a UTC offset, e.g. +02:00 or Z."]}
        )
    local = when.astimezone(zoneinfo.ZoneInfo(zone_name))
    unknown = sorted(set(payload.filters) - set(FILTER_KINDS))
    if unknown:
        raise ApiProblem(422, "Unknown filter kinds.", errors={"filters": [f"Unknown: {', '.join(unknown)}"]})
    return {
        "query": payload.query,
        "page_url": payload.page_url,
        "count": str(payload.count),
        "email": email,
        "run_date": local.strftime("%Y-%m-%d"),
        "run_time": local.strftime("%H:%M"),
        "time_zone": payload.time_zone,
        "formats": list(payload.formats),
        "min_width": str(payload.min_width),
        "min_height": str(payload.min_height),
        "engine": payload.engine,
        "safe_search": payload.safe_search,
        "pack": payload.pack,
        "repeat": payload.repeat,
        **{f"filter_{kind}": value for kind, value in payload.filters.items()},
    }


def _field_errors(form: JobForm) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for field, messages in form.errors.items():
        name = FIELD_NAMES.get(field, field.removeprefix("filter_") if field.startswith("filter_") else field)
        if field.startswith("filter_"):
            name = f"filters.{name}"
        errors.setdefault(name, []).extend(str(m) for m in messages)
    return errors


def _check_webhook_url(url: str | None) -> None:
    if url is None:
        return
    problem = "Too long." if len(url) > MAX_URL else check_public_url(url)
    if problem:
        raise ApiProblem(422, "The webhook address cannot be used.", errors={"webhook_url": [problem]})


def _limit(scope: str, key: str, detail: str) -> None:
    if not allow(scope, key, configured_rate(scope)):
        raise ApiProblem(429, detail, kind="rate-limited", retry_after=retry_after(scope))


def validated_form(request: HttpRequest, payload: JobIn, key: ApiKey) -> JobForm:
    """The form, valid, or a problem. As with the form, every post counts against
    the client address first and only valid ones against the mailbox."""
    _limit("ip", client_key(client_address(request)), "Too many jobs from this address.")
    form = JobForm(form_data(payload, key.email or ""))
    if not form.is_valid():
        raise ApiProblem(422, "The request has invalid fields.", errors=_field_errors(form))
    _check_webhook_url(payload.webhook_url)
    _limit("email", mailbox_key(form.cleaned_data["email"]), "Too many jobs for this mailbox.")
    return form


def _create(form: JobForm, job_id: uuid.UUID | None, client: str) -> Job:
    fields = form.request_fields()
    repeat = form.cleaned_data["repeat"]
    if repeat != REPEAT_NEVER:
        # The form's bounds on series (per mailbox, per client, in all) hold here too.
        refused = series_limit_reached(form.cleaned_data["email"], client)
        if refused is not None:
            raise ApiProblem(422, "No more series can be started.", errors={"repeat": [refused]})
        # A key was issued to its mailbox's owner (a one-time link mailed there, or an
        # operator): that is the owner's confirmation, so the series starts active.
        return series_submit(every=repeat, client=client, confirmed_by="api", **fields)
    job = services.job_submit(**fields, job_id=job_id, source="api")
    if job is None:  # that id was made already (a replay that lost a race)
        job = records.job_get(job_id)
    assert job is not None
    return job


def _hook_up(job: Job, url: str | None, key: ApiKey) -> None:
    if url is None:
        return
    webhook_target_set(job.id, url=url, key_prefix=key.prefix)
    if job.series_id:
        webhook_target_set(job.series_id, url=url, key_prefix=key.prefix)
    webhook_catch_up(job.id)  # a run that started before the address was stored


def job_submit_api(
    request: HttpRequest, payload: JobIn, key: ApiKey, idempotency: str | None
) -> tuple[Job, bool]:
    """Make the job (or series) of a valid request; ``(job, replayed)``. With an
    ``Idempotency-Key`` a repeat returns the job the first request made."""
    if idempotency is not None and not 0 < len(idempotency) <= MAX_IDEMPOTENCY_KEY:
        raise ApiProblem(400, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters.")
    job_id = uuid.uuid4()
    if idempotency is not None:
        first = idempotency_claim(key.prefix, idempotency, job_id)
        if first != job_id:
            return _replay(first), True
    try:
        form = validated_form(request, payload, key)
        client = client_key(client_address(request))
        job = _create(form, job_id if idempotency is not None else None, client)
    except Exception:
        if idempotency is not None:
            idempotency_set(key.prefix, idempotency, None)  # a retry may try again
        raise
    if idempotency is not None and job.id != job_id:
        idempotency_set(key.prefix, idempotency, job.id)  # a series' first run
    _hook_up(job, payload.webhook_url, key)
    return job, False


def _replay(job_id: uuid.UUID) -> Job:
    job = records.job_get(job_id)
    if job is None or job.status is None:
        raise ApiProblem(409, "The first request with this Idempotency-Key is still being handled; retry.")
    return job
