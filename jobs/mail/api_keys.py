"""The mail that carries a one-time link to a mailbox's API keys.

``/api/keys/`` stores the request (``jobs.store.api_keys.key_request_create``) and
queues ``key_link_send`` with its id: the address never travels in task arguments.
The send claims the request (pending -> sending) in a lightweight transaction, so a
task handed out twice sends one mail; the suppression list and the daily cap apply
as to every mail. The link names the request, signed, and expires after an hour.
"""

from __future__ import annotations

import logging
import smtplib
import uuid

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from jobs.lib import scheduling
from jobs.mail.suppression import is_suppressed, mail_allowed_today, unsubscribe_url
from jobs.store.api_keys import LINK_MAX_AGE_SECONDS, key_request_create, key_request_get, key_request_move

logger = logging.getLogger("imagedl.jobs")

SALT = "imagedl.api-keys.v1"
SEND_TASK = "jobs.tasks.api_key_link_send"


def key_link_token(request_id: uuid.UUID) -> str:
    return signing.dumps({"r": request_id.hex}, salt=SALT)


def key_link_read(token: str) -> uuid.UUID | None:
    """The request a link names, or None when it is forged or older than an hour."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=LINK_MAX_AGE_SECONDS)
        return uuid.UUID(hex=str(payload["r"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def key_link_request(*, email: str) -> uuid.UUID:
    """Store a request for keys and queue its mail."""
    request_id = key_request_create(email=email)
    scheduling.queue_at(f"api-keys-{request_id}", SEND_TASK, (str(request_id),), group="emails")
    return request_id


def key_link_build(email: str, request_id: uuid.UUID) -> EmailMultiAlternatives:
    reveal = settings.IMAGEDL_BASE_URL + reverse("api_keys:reveal", args=[key_link_token(request_id)])
    context = {"reveal_url": reveal, "unsubscribe_url": unsubscribe_url(email)}
    subject = " ".join(render_to_string("emails/api_keys-subject.txt", context).split())
    text = render_to_string("emails/api_keys-body.txt", context)
    html = render_to_string("emails/api_keys-body.html", context)
    headers = {
        "List-Unsubscribe": f"<{context['unsubscribe_url']}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [email], headers=headers)
    message.attach_alternative(html, "text/html")
    return message


def key_link_send(request_id: str) -> str:
    """Send the link once. A suppressed address or one past its daily cap gets
    nothing; a mail server that fails leaves the request pending (ask again)."""
    row = key_request_get(request_id)
    if row is None or not row.email:
        return "skipped: no request"
    if not key_request_move(row.id, from_states=("pending",), to="sending"):
        return f"skipped: {row.state}"
    if is_suppressed(row.email) or not mail_allowed_today(row.email):
        key_request_move(row.id, from_states=("sending",), to="blocked")
        return "skipped: blocked"
    try:
        key_link_build(row.email, row.id).send(fail_silently=False)
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        logger.warning("api key request=%s: the mail failed (%s)", row.id, type(exc).__name__)
        key_request_move(row.id, from_states=("sending",), to="pending")
        return "failed"
    key_request_move(row.id, from_states=("sending",), to="sent")
    return "sent"
