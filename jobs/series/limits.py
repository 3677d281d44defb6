"""How many recurring series one mailbox, one client and everybody may hold.

A series costs a run a day or a week for up to a year, so the form's rate limits
(which count posts) do not bound it: these count live (pending or active) series, in
``series_slot`` rows keyed by a keyed hash of the mailbox (``jobs.lib.mailboxes``:
every spelling is one mailbox) and of the client's address (an IPv6 client per /64,
``jobs.lib.ratelimit.client_key``), never the values themselves. Two posts at the
same moment may both pass the count: the limits bound, they are not exact quotas.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.crypto import salted_hmac

from jobs.lib.mailboxes import mailbox_key
from jobs.models import Series, SeriesSlot

SALT = "imagedl.series.slots.v1"
EVERYBODY = "all"


def _hashed(value: str) -> str:
    return salted_hmac(SALT, value).hexdigest()


def slot_keys(email: str, client: str | None) -> dict[str, str]:
    """The ``series_slot`` keys a new series takes, by scope."""
    keys = {"mailbox": _hashed(mailbox_key(email)), "all": EVERYBODY}
    if client:
        keys["client"] = _hashed(client)
    return keys


def _limits() -> dict[str, int]:
    return {
        "mailbox": settings.IMAGEDL_MAX_SERIES_PER_MAILBOX,
        "client": settings.IMAGEDL_MAX_SERIES_PER_IP,
        "all": settings.IMAGEDL_MAX_ACTIVE_SERIES,
    }


MESSAGES = {
    "mailbox": "This address already has {limit} recurring series, the most one address may have. "
    "Stop one (its emails have a link) or choose Never.",
    "client": "Your connection already started {limit} recurring series, the most we allow. "
    "Stop one or choose Never.",
    "all": "We are running {limit} recurring series, as many as we can. Please choose Never for now.",
}


def series_limit_reached(email: str, client: str | None) -> str | None:
    """The message naming the first limit a new series would pass, or None."""
    limits = _limits()
    for scope, key in slot_keys(email, client).items():
        held = SeriesSlot.objects.filter(scope=scope, key=key).count()
        if held >= limits[scope]:
            return MESSAGES[scope].format(limit=limits[scope])
    return None


def slots_take(series: Series, email: str, client: str | None) -> None:
    keys = slot_keys(email, client)
    for scope, key in keys.items():
        SeriesSlot.create(scope=scope, key=key, series_id=series.id)
    Series.objects(id=series.id).update(mailbox_slot=keys["mailbox"], client_slot=keys.get("client"))
    series.mailbox_slot, series.client_slot = keys["mailbox"], keys.get("client")


def slots_release(series: Series) -> None:
    """Give back a stopped series' rows (idempotent)."""
    keys = {"mailbox": series.mailbox_slot, "client": series.client_slot, "all": EVERYBODY}
    for scope, key in keys.items():
        if key:
            SeriesSlot.objects(scope=scope, key=key, series_id=series.id).delete()
