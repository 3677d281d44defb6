"""The Prometheus metrics of imagedl: their one home, and the small functions the code
calls where things already happen.

Counters and histograms live in the process that counts them; under gunicorn and
django-q2 (several processes each) ``prometheus_client`` keeps them in files of
``PROMETHEUS_MULTIPROC_DIR`` that the exposition adds up (``jobs.ops``). Most counts
come from one place, ``count_event``, which ``jobs.store.events.event_log`` calls for
every event a job records; the rest are counted where no event is written (a claim, a
reaper pass, a step back).

Every label value comes from a fixed set (``label_of`` maps anything else to
``other``): no query, email, URL or job id ever becomes a label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from prometheus_client import Counter, Histogram, disable_created_metrics

SOURCES = ("form", "api", "series", "cli")
OUTCOMES = ("done", "failed", "cancelled")
ENGINES = ("bing", "duckduckgo", "google", "page")
ENGINE_OUTCOMES = ("ok", "empty", "failed")
MAIL_KINDS = ("accepted", "started", "ready", "failed", "series_stopped")
MAIL_OUTCOMES = ("sent", "retried", "blocked", "failed")
REAPER_ACTIONS = ("takeover", "late_start", "mail_requeued", "outcome_mail", "cleared")
STEPBACK_CAUSES = ("cassandra", "browser", "other")
# What a statement sent to Cassandra does: a read, a plain write, a batch (one request
# whatever it holds), a lightweight transaction (an ``IF`` condition: Paxos, four round
# trips between replicas) or a schema change.
STATEMENT_KINDS = ("read", "write", "batch", "lwt", "schema")
S3_OPERATIONS = (
    "PutObject",
    "HeadObject",
    "GetObject",
    "DeleteObject",
    "ListObjectsV2",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "HeadBucket",
    "CreateBucket",
)
# The rejection codes of downloader (validation, the HTTP chokepoint, de-duplication);
# an HTTP status becomes its class (http_4xx, http_5xx).
REJECT_REASONS = (
    "already_delivered",
    "bad_redirect",
    "bad_scheme",
    "bad_url",
    "connection_error",
    "conversion_failed",
    "decode_timeout",
    "dns_error",
    "duplicate_exact",
    "duplicate_near",
    "empty",
    "filter_mismatch",
    "format_not_allowed",
    "html",
    "http_3xx",
    "http_4xx",
    "http_5xx",
    "noai",
    "not_an_image",
    "private_address",
    "publisher_opt_out",
    "svg",
    "timeout",
    "too_large",
    "too_many_pixels",
    "too_small",
    "truncated",
)
OTHER = "other"
_HTTP_STATUS = re.compile(r"http_([1-5])\d\d")

disable_created_metrics()  # no *_created series: half the lines, nothing an alert reads

# Buckets in seconds: a job waits from seconds (run now) to the scheduler's 30 s and
# beyond; a run takes seconds to an hour (the task's time-out).
WAIT_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))
RUN_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, float("inf"))

JOBS_SUBMITTED = Counter("imagedl_jobs_submitted", "Jobs submitted, by where they came from.", ["source"])
JOBS_FINISHED = Counter("imagedl_jobs_finished", "Jobs that finished, by outcome.", ["outcome"])
JOB_WAIT = Histogram(
    "imagedl_job_wait_seconds", "From a job's run time to its first start.", buckets=WAIT_BUCKETS
)
JOB_RUN = Histogram(
    "imagedl_job_run_seconds", "From a job's first start to its end (done or failed).", buckets=RUN_BUCKETS
)
IMAGES_KEPT = Counter("imagedl_images_kept", "Images delivered in finished jobs' archives.")
IMAGE_REJECTS = Counter("imagedl_image_rejects", "Candidate images rejected, by reason code.", ["reason"])
DOWNLOAD_BYTES = Counter("imagedl_download_bytes", "Bytes of the images runs kept (as stored).")
ENGINE_SEARCHES = Counter(
    "imagedl_engine_searches", "Searches of a run on one engine, by outcome.", ["engine", "outcome"]
)
MAILS = Counter("imagedl_mails", "Mail attempts of the outbox, by kind and outcome.", ["kind", "outcome"])
REAPER_ACTIONS_TOTAL = Counter("imagedl_reaper_actions", "What reaper passes did, by action.", ["action"])
TRANSIENT_STEPBACKS = Counter(
    "imagedl_transient_stepbacks", "Runs and mails queued again after a passing fault.", ["cause"]
)
CASSANDRA_STATEMENTS = Counter(
    "imagedl_cassandra_statements", "Requests this server sent to Cassandra, by kind.", ["kind"]
)
S3_REQUESTS = Counter(
    "imagedl_s3_requests",
    "HTTP requests this server sent to the S3 bucket (each try), by operation.",
    ["operation"],
)
S3_BYTES_SENT = Counter("imagedl_s3_bytes_sent", "Bytes of the bodies this server sent to the S3 bucket.")


def label_of(value: object, allowed: Iterable[str]) -> str:
    """``value`` when it is one of ``allowed``, else ``other``."""
    text = str(value)
    return text if text in allowed else OTHER


def reject_reason_label(reason: str) -> str:
    status = _HTTP_STATUS.fullmatch(reason)
    if status:
        return f"http_{status.group(1)}xx"
    return label_of(reason, REJECT_REASONS)


def _int(value: object) -> int:
    try:
        return max(int(str(value)), 0)
    except ValueError:
        return 0


def count_event(kind: str, data: Mapping[str, object]) -> None:
    """Count what a job's event says (called for every recorded event)."""
    if kind in OUTCOMES:
        JOBS_FINISHED.labels(kind).inc()
        if kind == "done":
            IMAGES_KEPT.inc(_int(data.get("kept", 0)))
    elif kind == "rejected":
        IMAGE_REJECTS.labels(reject_reason_label(str(data.get("reason", "")))).inc(_int(data.get("count", 1)))
    elif kind.startswith("email_"):
        _count_mail(kind, data)


_MAIL_EVENTS = {
    "email_sent": "sent",
    "email_delayed": "retried",
    "email_suppressed": "blocked",
    "email_daily_cap": "blocked",
    "email_failed": "failed",
    "email_refused": "failed",
}


def _count_mail(kind: str, data: Mapping[str, object]) -> None:
    outcome = _MAIL_EVENTS.get(kind)
    if outcome is not None:
        MAILS.labels(label_of(data.get("email", ""), MAIL_KINDS), outcome).inc()


def job_submitted_count(source: str) -> None:
    JOBS_SUBMITTED.labels(label_of(source, SOURCES)).inc()


def job_wait_observe(seconds: float) -> None:
    JOB_WAIT.observe(max(seconds, 0.0))


def job_run_observe(seconds: float) -> None:
    JOB_RUN.observe(max(seconds, 0.0))


def download_bytes_count(size: int) -> None:
    DOWNLOAD_BYTES.inc(max(size, 0))


def engine_search_count(engine: str, outcome: str) -> None:
    ENGINE_SEARCHES.labels(label_of(engine, ENGINES), label_of(outcome, ENGINE_OUTCOMES)).inc()


def reaper_action_count(action: str, amount: int = 1) -> None:
    if amount:
        REAPER_ACTIONS_TOTAL.labels(label_of(action, REAPER_ACTIONS)).inc(amount)


def stepback_count(cause: str) -> None:
    TRANSIENT_STEPBACKS.labels(label_of(cause, STEPBACK_CAUSES)).inc()


_LWT = re.compile(r"\bIF\s+(NOT\s+)?EXISTS\b|\bIF\s+\w", re.IGNORECASE)
_SCHEMA = ("CREATE", "ALTER", "DROP", "TRUNCATE", "GRANT", "REVOKE")
_statement_kinds: dict[str, str] = {}


def statement_kind(cql: str) -> str:
    """What the CQL text ``cql`` does (one of ``STATEMENT_KINDS`` but ``batch``),
    remembered per text: the same few hundred statements are sent over and over."""
    kind = _statement_kinds.get(cql)
    if kind is None:
        words = cql.lstrip().split(None, 1)
        first = words[0].upper() if words else ""
        if first in _SCHEMA:
            kind = "schema"
        elif first == "SELECT":
            kind = "read"
        else:
            kind = "lwt" if _LWT.search(cql) else "write"
        if len(_statement_kinds) < 10_000:  # texts come from code; a bound all the same
            _statement_kinds[cql] = kind
    return kind


def cassandra_statement_count(kind: str) -> None:
    CASSANDRA_STATEMENTS.labels(label_of(kind, STATEMENT_KINDS)).inc()


def s3_request_count(operation: str, body_bytes: int) -> None:
    S3_REQUESTS.labels(label_of(operation, S3_OPERATIONS)).inc()
    if body_bytes > 0:
        S3_BYTES_SENT.inc(body_bytes)


def metrics_prime() -> None:
    """Every fixed label set starts at zero, so a rate exists before the first event
    (an alert on a ratio must not wait for the first failure to see its series)."""
    for source in SOURCES:
        JOBS_SUBMITTED.labels(source)
    for outcome in OUTCOMES:
        JOBS_FINISHED.labels(outcome)
    for engine in ENGINES:
        for outcome in ENGINE_OUTCOMES:
            ENGINE_SEARCHES.labels(engine, outcome)
    for kind in MAIL_KINDS:
        for outcome in MAIL_OUTCOMES:
            MAILS.labels(kind, outcome)
    for action in REAPER_ACTIONS:
        REAPER_ACTIONS_TOTAL.labels(action)
    for cause in STEPBACK_CAUSES:
        TRANSIENT_STEPBACKS.labels(cause)
    for kind in STATEMENT_KINDS:
        CASSANDRA_STATEMENTS.labels(kind)
    for operation in S3_OPERATIONS:
        S3_REQUESTS.labels(operation)
