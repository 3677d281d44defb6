"""Who must not be mailed: the "never email me again" list and a daily cap per recipient.

The list keeps a keyed hash of the mailbox (every spelling of one address is one
mailbox, ``jobs.lib.mailboxes``), never the address. The key is derived from SECRET_KEY:
changing SECRET_KEY empties the list in effect. Unsubscribe links carry that hash,
signed, and never expire: they sit in people's mailboxes long after the job's data is
deleted.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes

from jobs.lib.mailboxes import mailbox_key
from jobs.lib.ratelimit import allow
from jobs.models import EmailSuppression

SALT = "imagedl.suppression.v1"


def address_hash(email: str) -> str:
    """A keyed hash of the mailbox ``email`` names (hex, 64 characters)."""
    key = hashlib.sha256(force_bytes(SALT + settings.SECRET_KEY)).digest()
    return hmac.new(key, mailbox_key(email).encode(), hashlib.sha256).hexdigest()


def unsubscribe_url(email: str) -> str:
    token = signing.dumps({"h": address_hash(email)}, salt=SALT)
    return settings.IMAGEDL_BASE_URL + reverse("jobs:unsubscribe", args=[token])


def unsubscribe_token_read(token: str) -> str | None:
    """The address hash an unsubscribe token names, or None when it is not valid."""
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    value = payload.get("h") if isinstance(payload, dict) else None
    return value if isinstance(value, str) and len(value) == 64 else None


def suppression_add(*, address_hash: str) -> None:
    """Never mail this mailbox again (idempotent)."""
    EmailSuppression.create(address_hash=address_hash, created_at=timezone.now())


def is_suppressed(email: str) -> bool:
    return EmailSuppression.objects.filter(address_hash=address_hash(email)).count() > 0


def mail_allowed_today(email: str) -> bool:
    """Count one mail to this recipient today (UTC); False past
    IMAGEDL_MAILS_PER_RECIPIENT_PER_DAY (0: no cap)."""
    cap = settings.IMAGEDL_MAILS_PER_RECIPIENT_PER_DAY
    return allow("mail", address_hash(email), (cap, 86400))
