"""One key per mailbox, whatever the spelling of its address.

``"Ada"@Example.org``, ``ada+news@example.org.`` and ``ADA@EXAMPLE.ORG`` reach one
mailbox, and limits, caps and the suppression list must treat them as one. The key
is deliberately coarse: two addresses that share it are treated alike.
"""

from __future__ import annotations

import hashlib
import hmac
import re

# Providers known to ignore dots in the local part.
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
_QUOTED_PAIR = re.compile(r"\\(.)")


def address_problem(email: str) -> str | None:
    """Why an address (already valid by RFC 5322's rules) is not accepted, or None.

    A domain that is an IP literal (``user@[127.0.0.1]``) makes the mail server
    connect to an address the sender chose, and a quoted local part (``"a b"@x``) is a
    spelling real mailboxes do not need that mail software handles inconsistently."""
    local, _, domain = email.strip().rpartition("@")
    if domain.startswith("["):
        return "Use an address with a domain name, not an IP address."
    if '"' in local or "\\" in local:
        return "Use an address without quotes."
    return None


def mailbox_key(email: str) -> str:
    """A canonical ``local@domain`` for an address: quotes and escapes removed, case
    folded, ``+tags`` dropped, the domain in its ASCII (IDNA) form without a trailing
    dot, and dots dropped where the provider ignores them."""
    local, _, domain = email.strip().rpartition("@")
    if len(local) >= 2 and local.startswith('"') and local.endswith('"'):
        local = _QUOTED_PAIR.sub(r"\1", local[1:-1])
    local = local.casefold().split("+", 1)[0]
    domain = domain.strip().rstrip(".").casefold()
    if domain.startswith("[") and domain.endswith("]"):
        domain = domain[1:-1].removeprefix("ipv6:")
    else:
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    if domain in DOTLESS_DOMAINS:
        domain = DOTLESS_DOMAINS[domain]
        local = local.replace(".", "")
    return f"{local}@{domain}"


OWNER_SALT = "imagedl.owner.v1"


def mailbox_owner(email: str) -> str:
    """A keyed hash of the mailbox ``email`` names (hex, 64 characters): who owns a job
    for the API (``jobs.models.JobByOwner``), without keeping the address."""
    from django.conf import settings

    key = hashlib.sha256((OWNER_SALT + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, mailbox_key(email).encode(), hashlib.sha256).hexdigest()
