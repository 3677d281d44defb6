"""Job records in Cassandra, one table per question the app asks.

- ``Job``: one job by id (every field of the job).
- ``JobByDay`` + ``JobDay``: jobs newest first for operators, paged a day partition at a
  time, so listing never scans the whole ``job`` table.
- ``JobImage``: a job's images in order.
- ``JobEvent``: a job's event log in time order.

Only ``jobs.core.services`` (and ``jobs.store.events`` for the log) write these rows. Personal
cells (email, query, page URL, image and event text) are written with a TTL as a safety
net behind the purge.
"""

from __future__ import annotations

import uuid

from cassandra.cqlengine import columns
from django_cassandra_engine.models import DjangoCassandraModel

from downloader.choices import (
    FILTER_KINDS,
    PACK_DEFAULT,
    PACK_LABELS,
    SAFE_SEARCH_DEFAULT,
    SAFE_SEARCH_LABELS,
    Filters,
)


class JobStatus:
    SCHEDULED = "scheduled"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    ALL = (SCHEDULED, RUNNING, DONE, FAILED, CANCELLED, EXPIRED)
    ACTIVE = (SCHEDULED, RUNNING)
    FINISHED = (DONE, FAILED, CANCELLED, EXPIRED)


class Job(DjangoCassandraModel):
    __table_name__ = "job"

    id = columns.UUID(primary_key=True, default=uuid.uuid4)
    created_at = columns.DateTime(required=True)

    # What the user asked for. email, query and page_url are personal (TTL'd, purged).
    email = columns.Text()
    query = columns.Text()
    page_url = columns.Text()
    engine = columns.Text(default="auto")
    requested_count = columns.Integer(required=True)
    run_at = columns.DateTime(required=True)  # UTC
    time_zone = columns.Text(default="UTC")
    formats = columns.Set(columns.Text)  # empty: any format
    min_width = columns.Integer(default=0)
    min_height = columns.Integer(default=0)
    output_format = columns.Text()  # convert every image to this format, if set
    safe_search = columns.Text(default=SAFE_SEARCH_DEFAULT)  # strict, moderate or off
    # Engine filters (downloader.choices.FILTER_VALUES), one column per kind; empty: any.
    filter_license = columns.Text()
    filter_colour = columns.Text()
    filter_layout = columns.Text()
    filter_size = columns.Text()
    filter_type = columns.Text()
    filter_freshness = columns.Text()
    pack = columns.Text(default=PACK_DEFAULT)  # the delivery's layout (downloader.choices.PACKS)

    # What happened.
    status = columns.Text(default=JobStatus.SCHEDULED)
    engine_used = columns.Text()
    # What an engine could not apply of the filters: "Google could not apply: freshness"
    # (one line per engine).
    filters_unapplied = columns.Text()
    found_count = columns.Integer(default=0)
    downloaded_count = columns.Integer(default=0)
    rejected_count = columns.Integer(default=0)
    archive_path = columns.Text()
    archive_bytes = columns.BigInt(default=0)
    error = columns.Text()
    attempts = columns.Integer(default=0)
    started_at = columns.DateTime()
    finished_at = columns.DateTime()
    delivered_at = columns.DateTime()
    purged_at = columns.DateTime()
    purge_due_at = columns.DateTime()  # the job's job_purge_due row, replaced on retry

    # Who works on it. A run claims the job by writing its id and a lease expiry in a
    # lightweight transaction and renews the lease while it works; every write it makes
    # to this row is conditional on its id. ``generation`` counts operator retries:
    # each generation sends its own mails.
    run_id = columns.UUID()
    lease_until = columns.DateTime()
    requeued_at = columns.DateTime()  # the reaper's last copy of its run (one per grace period)
    generation = columns.Integer(default=1)
    active_bucket = columns.Text()  # its job_active row's bucket (jobs.store.queues)

    # A run of a recurring series (``Series``): its id and the run's number (from 1),
    # and how many images found again were left out (already delivered to the series).
    series_id = columns.UUID()
    series_run = columns.Integer()
    already_delivered = columns.Integer(default=0)
    # Held: stored, its "scheduled" mail sent, its run not queued until it is released
    # (the first run of a series waiting for its confirmation). No run starts while held.
    held = columns.Boolean(default=False)

    class Meta:
        get_pk_field = "id"

    @property
    def subject(self) -> str:
        """What the job looks for: the query, else the page URL."""
        return self.query or self.page_url or ""

    @property
    def is_active(self) -> bool:
        return self.status in JobStatus.ACTIVE

    @property
    def safe_search_label(self) -> str:
        """The job's safe search in words (jobs stored before it existed: the default)."""
        return SAFE_SEARCH_LABELS.get(self.safe_search or SAFE_SEARCH_DEFAULT, SAFE_SEARCH_DEFAULT)

    @property
    def pack_label(self) -> str:
        """The delivery's layout in words (jobs stored before it existed: a zip)."""
        return PACK_LABELS.get(self.pack or PACK_DEFAULT, PACK_LABELS[PACK_DEFAULT])

    @property
    def filters(self) -> Filters:
        """The job's engine filters (a value no longer offered counts as any)."""
        return Filters.from_stored({kind: getattr(self, f"filter_{kind}") for kind in FILTER_KINDS})

    @property
    def filters_unapplied_lines(self) -> list[str]:
        return [line for line in (self.filters_unapplied or "").splitlines() if line]


def filter_columns(filters: Filters) -> dict[str, str | None]:
    """The Job columns that store ``filters`` (None: not set, so nothing is written)."""
    return {f"filter_{kind}": getattr(filters, kind) or None for kind in FILTER_KINDS}


class JobDay(DjangoCassandraModel):
    """The days that have jobs, newest first (one small partition)."""

    __table_name__ = "job_day"

    bucket = columns.Text(partition_key=True, default="all")
    day = columns.Date(primary_key=True, clustering_order="DESC")

    class Meta:
        get_pk_field = "bucket"


class JobByDay(DjangoCassandraModel):
    """Jobs of one UTC day (by creation), newest first; status kept in step by services."""

    __table_name__ = "job_by_day"

    day = columns.Date(partition_key=True)
    created_at = columns.DateTime(primary_key=True, clustering_order="DESC")
    job_id = columns.UUID(primary_key=True, clustering_order="ASC")
    status = columns.Text()

    class Meta:
        get_pk_field = "day"


class JobImage(DjangoCassandraModel):
    """The images a run kept, by run: readers use the rows of the run the job names."""

    __table_name__ = "job_run_image"

    job_id = columns.UUID(partition_key=True)
    run_id = columns.UUID(primary_key=True, clustering_order="ASC")
    position = columns.Integer(primary_key=True, clustering_order="ASC")
    file_name = columns.Text()
    source_url = columns.Text()
    page_url = columns.Text()
    width = columns.Integer()
    height = columns.Integer()
    format = columns.Text()
    bytes = columns.BigInt()
    sha256 = columns.Text()
    phash = columns.Text()
    # Credits (downloader.collect.KeptImage): the caption (the engine's title, or the
    # page's alt text, figure caption or title), the engine, its rank there.
    caption = columns.Text()
    title = columns.Text()  # rows stored before captions: the engine's title (read as the caption)
    engine = columns.Text()
    rank = columns.Integer()
    # Rights (downloader.rights): a license the image or its page states, and where it
    # was stated; the creator, copyright notice and licensor the file or page names.
    license = columns.Text()
    license_from = columns.Text()
    creator = columns.Text()
    copyright = columns.Text()
    licensor = columns.Text()

    class Meta:
        get_pk_field = "job_id"


class JobEvent(DjangoCassandraModel):
    __table_name__ = "job_event"

    job_id = columns.UUID(partition_key=True)
    at = columns.TimeUUID(primary_key=True, clustering_order="ASC")
    kind = columns.Text()
    level = columns.Text(default="info")
    message = columns.Text()
    data = columns.Map(columns.Text, columns.Text)

    class Meta:
        get_pk_field = "job_id"


# The three queue tables (job_purge_due, job_active, mail_pending) are partitioned by
# the five minutes their rows fall due in (jobs.store.queues), and passes read those
# buckets from a watermark: no partition collects the tombstones of every job. Their rows are
# rewritten by the passes anyway, so a row a node missed the deletion of comes back
# harmlessly: tombstones need not outlive an hour.
QUEUE_OPTIONS = {"gc_grace_seconds": 3600}


class JobPurgeDue(DjangoCassandraModel):
    """Finished jobs by the time their data is due for deletion, oldest first.

    The purge reads the small bucket partitions up to "now" instead of scanning ``job``.
    Rows hold no personal data and are deleted once the job is purged.
    """

    __table_name__ = "job_purge_due"
    __options__ = QUEUE_OPTIONS

    bucket = columns.Text(partition_key=True, default="all")
    due_at = columns.DateTime(primary_key=True, clustering_order="ASC")
    job_id = columns.UUID(primary_key=True, clustering_order="ASC")

    class Meta:
        get_pk_field = "bucket"


class JobActive(DjangoCassandraModel):
    """Jobs scheduled or running, by the bucket of their run time: what the reaper
    looks after. A row is written with the job and deleted once it is finished."""

    __table_name__ = "job_active"
    __options__ = QUEUE_OPTIONS

    bucket = columns.Text(partition_key=True, default="all")
    job_id = columns.UUID(primary_key=True, clustering_order="ASC")

    class Meta:
        get_pk_field = "bucket"


class MailState:
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the last try
    SUPERSEDED = "superseded"  # an operator's retry started a new generation first
    BLOCKED = "blocked"  # the address is suppressed, or had its day's share of mails

    DONE = (SENT, FAILED, SUPERSEDED, BLOCKED)


class JobMail(DjangoCassandraModel):
    """The outbox: one row per (job, generation, kind). A sender claims the row in a
    lightweight transaction before sending and marks it sent after, so a task handed
    out twice sends one mail."""

    __table_name__ = "job_mail"

    job_id = columns.UUID(partition_key=True)
    generation = columns.Integer(primary_key=True, clustering_order="ASC")
    kind = columns.Text(primary_key=True, clustering_order="ASC")
    state = columns.Text(default=MailState.PENDING)
    claimed_by = columns.UUID()
    claim_until = columns.DateTime()
    tries = columns.Integer(default=0)
    queued_at = columns.DateTime()
    sent_at = columns.DateTime()
    listed_in = columns.Text()  # its mail_pending row's bucket (jobs.store.queues)

    class Meta:
        get_pk_field = "job_id"


class MailPending(DjangoCassandraModel):
    """Outbox rows not yet sent, by the bucket of the time they were queued, for the reaper."""

    __table_name__ = "mail_pending"
    __options__ = QUEUE_OPTIONS

    bucket = columns.Text(partition_key=True, default="all")
    job_id = columns.UUID(primary_key=True, clustering_order="ASC")
    generation = columns.Integer(primary_key=True, clustering_order="ASC")
    kind = columns.Text(primary_key=True, clustering_order="ASC")

    class Meta:
        get_pk_field = "bucket"


class EmailSuppression(DjangoCassandraModel):
    """Mailboxes that asked never to be emailed again, by a keyed hash of the mailbox
    (``jobs.mail.suppression.address_hash``): the list cannot be read back into addresses."""

    __table_name__ = "email_suppression"

    address_hash = columns.Text(partition_key=True)
    created_at = columns.DateTime(required=True)

    class Meta:
        get_pk_field = "address_hash"


class SeriesStatus:
    PENDING = "pending"  # waiting for its owner's confirmation (double opt-in)
    ACTIVE = "active"
    STOPPED = "stopped"


class SeriesEvery:
    DAY = "day"
    WEEK = "week"

    DAYS = {DAY: 1, WEEK: 7}


class Series(DjangoCassandraModel):
    """A recurring request: run again every day or week at the same wall-clock time in
    its zone, delivering only images not delivered to it before (``jobs.series``).

    Personal cells (email, query, page URL) carry a TTL renewed at each run; the row
    is purged IMAGEDL_RETENTION_MINUTES after the series stops. ``runs_scheduled`` is
    the number of the newest run created: moving it on is the lightweight transaction
    that lets one caller, and only one, create the next run's job."""

    __table_name__ = "series"

    id = columns.UUID(primary_key=True, default=uuid.uuid4)
    created_at = columns.DateTime(required=True)
    email = columns.Text()
    query = columns.Text()
    page_url = columns.Text()
    engine = columns.Text(default="auto")
    requested_count = columns.Integer(required=True)
    formats = columns.Set(columns.Text)
    min_width = columns.Integer(default=0)
    min_height = columns.Integer(default=0)
    output_format = columns.Text()
    safe_search = columns.Text(default=SAFE_SEARCH_DEFAULT)
    filter_values = columns.Map(columns.Text, columns.Text)  # engine filters, kind -> value
    pack = columns.Text(default=PACK_DEFAULT)  # every run's delivery layout
    # When: every day or week, at this wall-clock time ("HH:MM") in this zone; a weekly
    # series on this weekday (0 Monday .. 6 Sunday).
    every = columns.Text(default=SeriesEvery.DAY)
    time_zone = columns.Text(default="UTC")
    local_time = columns.Text(required=True)
    weekday = columns.Integer()
    last_day = columns.Date()  # optional: no run starts after this local date

    status = columns.Text(default=SeriesStatus.ACTIVE)
    confirm_by = columns.DateTime()  # pending: it expires at this time unless confirmed
    # Its rows in ``series_slot`` (keyed hashes of its mailbox and its client's address).
    mailbox_slot = columns.Text()
    client_slot = columns.Text()
    confirmed_at = columns.DateTime()
    runs_scheduled = columns.Integer(default=1)  # the newest run's number
    runs_done = columns.Integer(default=0)  # runs that ended (delivered or failed)
    empty_runs = columns.Integer(default=0)  # runs in a row with nothing new
    delivered_total = columns.Integer(default=0)
    next_job_id = columns.UUID()  # the newest run's job
    next_run_at = columns.DateTime()  # its time (UTC)
    stop_reason = columns.Text()  # user, max_runs, nothing_new, unsubscribed, operator, unconfirmed
    stopped_at = columns.DateTime()
    last_delivery_at = columns.DateTime()
    purge_due_at = columns.DateTime()
    purged_at = columns.DateTime()

    class Meta:
        get_pk_field = "id"

    @property
    def subject(self) -> str:
        return self.query or self.page_url or ""

    @property
    def is_active(self) -> bool:
        return self.status == SeriesStatus.ACTIVE

    @property
    def filters(self) -> Filters:
        """The engine filters every run of the series asks for."""
        return Filters.from_stored(self.filter_values or {})


class SeriesRun(DjangoCassandraModel):
    """A series' runs in order: which job each one is (for its status page)."""

    __table_name__ = "series_run"

    series_id = columns.UUID(partition_key=True)
    run = columns.Integer(primary_key=True, clustering_order="ASC")
    job_id = columns.UUID()
    run_at = columns.DateTime()

    class Meta:
        get_pk_field = "series_id"


class SeriesImage(DjangoCassandraModel):
    """What a series delivered: sha256 and the near-duplicate signature, under the
    signature method's version (``downloader.dedupe.SIGNATURE_METHOD``). A later run
    compares its images with the rows of the current version only (sha256 with all)."""

    __table_name__ = "series_image"

    series_id = columns.UUID(partition_key=True)
    method = columns.Text(primary_key=True, clustering_order="ASC")
    sha256 = columns.Text(primary_key=True, clustering_order="ASC")
    phash = columns.Text()
    run = columns.Integer()

    class Meta:
        get_pk_field = "series_id"


class SeriesList(DjangoCassandraModel):
    """Every series, newest first (one small partition): the admin's list. Rows hold no
    personal data; a purged series' row goes with it."""

    __table_name__ = "series_list"

    bucket = columns.Text(partition_key=True, default="all")
    created_at = columns.DateTime(primary_key=True, clustering_order="DESC")
    series_id = columns.UUID(primary_key=True, clustering_order="ASC")

    class Meta:
        get_pk_field = "bucket"


class SeriesSlot(DjangoCassandraModel):
    """The live (pending or active) series one mailbox, one client or everybody holds
    (``scope`` mailbox, client or all; ``key`` a keyed hash, never an address): what
    the limits on series count. A series takes its rows when submitted and gives them
    back when it stops."""

    __table_name__ = "series_slot"

    scope = columns.Text(partition_key=True)
    key = columns.Text(partition_key=True)
    series_id = columns.UUID(primary_key=True, clustering_order="ASC")

    class Meta:
        get_pk_field = "scope"


class SeriesPurgeDue(DjangoCassandraModel):
    """Stopped series by the time their data is due for deletion (as ``JobPurgeDue``)."""

    __table_name__ = "series_purge_due"

    bucket = columns.Text(partition_key=True, default="all")
    due_at = columns.DateTime(primary_key=True, clustering_order="ASC")
    series_id = columns.UUID(primary_key=True, clustering_order="ASC")

    class Meta:
        get_pk_field = "bucket"


class QueueMark(DjangoCassandraModel):
    """Per queue table, the oldest bucket partition a pass must still read (the
    watermark of jobs.store.queues): older ones hold nothing but tombstones."""

    __table_name__ = "queue_mark"

    queue = columns.Text(primary_key=True)
    bucket = columns.Text()

    class Meta:
        get_pk_field = "queue"


# --- the API (jobs.api): keys, what each mailbox owns, webhooks ------------------------


class ApiScope:
    READ_WRITE = "rw"
    READ_ONLY = "ro"


class ApiKey(DjangoCassandraModel):
    """One API key, found by its visible prefix (``imw_AbCd1234``); only a keyed hash of
    the whole key is kept (``jobs.store.api_keys``). A read-write key and a read-only key
    are issued together with a webhook secret, kept on the read-write key's row (the
    deliveries are signed with it, so it is stored as it is). ``owner`` is the keyed hash
    of the mailbox (``jobs.lib.mailboxes.mailbox_owner``): the key sees that mailbox's
    jobs and series; ``email`` is where the jobs it submits are delivered."""

    __table_name__ = "api_key"

    prefix = columns.Text(partition_key=True)
    scope = columns.Text(required=True)
    key_hash = columns.Text(required=True)
    owner = columns.Text(required=True)
    email = columns.Text()
    pair_prefix = columns.Text()  # the key issued with this one
    webhook_secret = columns.Text()  # read-write keys: whsec_...
    webhooks_off_at = columns.DateTime()  # a receiver answered 410 Gone
    created_at = columns.DateTime(required=True)
    revoked_at = columns.DateTime()

    class Meta:
        get_pk_field = "prefix"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiKeyList(DjangoCassandraModel):
    """Every key, newest first (one small partition): the admin's list."""

    __table_name__ = "api_key_list"

    bucket = columns.Text(partition_key=True, default="all")
    created_at = columns.DateTime(primary_key=True, clustering_order="DESC")
    prefix = columns.Text(primary_key=True, clustering_order="ASC")

    class Meta:
        get_pk_field = "bucket"


class ApiKeyRequest(DjangoCassandraModel):
    """A person asked for keys (``/api/keys/``): the mail with the one-time link, and
    the link's use. ``state`` goes pending -> sending -> sent -> used, each step a
    lightweight transaction; the row (and its address) expires after a day."""

    __table_name__ = "api_key_request"

    id = columns.UUID(primary_key=True, default=uuid.uuid4)
    email = columns.Text()
    state = columns.Text(default="pending")
    created_at = columns.DateTime(required=True)

    class Meta:
        get_pk_field = "id"


class JobByOwner(DjangoCassandraModel):
    """A mailbox's jobs newest first (by the keyed hash of the mailbox): what its API
    keys list and may open. No personal data; expires with the job's personal cells."""

    __table_name__ = "job_by_owner"

    owner = columns.Text(partition_key=True)
    created_at = columns.DateTime(primary_key=True, clustering_order="DESC")
    job_id = columns.UUID(primary_key=True, clustering_order="ASC")
    series_id = columns.UUID()

    class Meta:
        get_pk_field = "owner"


class ApiIdempotency(DjangoCassandraModel):
    """``Idempotency-Key`` of a POST /jobs by one key: the job the first request made
    (claimed in a lightweight transaction before the job is made; kept a day)."""

    __table_name__ = "api_idempotency"

    key_prefix = columns.Text(partition_key=True)
    idempotency_key = columns.Text(primary_key=True, clustering_order="ASC")
    job_id = columns.UUID(required=True)
    created_at = columns.DateTime(required=True)

    class Meta:
        get_pk_field = "key_prefix"


class WebhookTarget(DjangoCassandraModel):
    """Where a job's (or a series') events go, and the key whose secret signs them.
    The URL is personal: written with the personal-data TTL, purged with the job."""

    __table_name__ = "webhook_target"

    subject_id = columns.UUID(primary_key=True)  # a job's id or a series' id
    url = columns.Text()
    key_prefix = columns.Text()
    created_at = columns.DateTime(required=True)

    class Meta:
        get_pk_field = "subject_id"


class WebhookState:
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the last try, or the target was refused
    DISABLED = "disabled"  # the key's webhooks are off (410 Gone) or the key was revoked

    DONE = (SENT, FAILED, DISABLED)


class WebhookDelivery(DjangoCassandraModel):
    """The webhook outbox: one row per event of a job (``event_id``, the
    ``webhook-id`` every try carries), claimed in a lightweight transaction before
    each try, like the mails' ``job_mail``. ``reply`` keeps at most 200 characters of
    the receiver's answer."""

    __table_name__ = "webhook_delivery"

    job_id = columns.UUID(partition_key=True)
    event_id = columns.Text(primary_key=True, clustering_order="ASC")
    type = columns.Text(required=True)
    payload = columns.Text(required=True)
    state = columns.Text(default=WebhookState.PENDING)
    created_at = columns.DateTime(required=True)
    claimed_by = columns.UUID()
    claim_until = columns.DateTime()
    tries = columns.Integer(default=0)
    next_try_at = columns.DateTime()
    last_status = columns.Integer()
    reply = columns.Text()
    reason = columns.Text()
    sent_at = columns.DateTime()
    listed_in = columns.Text()  # its webhook_pending bucket (jobs.store.queues)

    class Meta:
        get_pk_field = "job_id"


class WebhookPending(DjangoCassandraModel):
    """Webhook deliveries not yet done, by the bucket of the time they were made
    (jobs.store.queues): what the reaper reads to queue again a try whose task was lost."""

    __table_name__ = "webhook_pending"
    __options__ = QUEUE_OPTIONS

    bucket = columns.Text(partition_key=True, default="all")
    job_id = columns.UUID(primary_key=True, clustering_order="ASC")
    event_id = columns.Text(primary_key=True, clustering_order="ASC")

    class Meta:
        get_pk_field = "bucket"
