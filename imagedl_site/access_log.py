"""Logs without the signed tokens of public links.

Every public URL of a job, a series or an unsubscribe link carries a token that opens
it (``jobs.lib.links``); logs outlive the purge and are read by more people than the
mail's recipient. gunicorn's access log (``TokenlessLogger``: the Procfile, ``make
run`` and the local cluster name it with ``--logger-class``) and Django's own
request warnings (``TokenFilter`` on the log handlers) keep the route with each token
replaced by "…".
"""

from __future__ import annotations

import logging
import re

from gunicorn.glogging import Logger

# The path segment after /jobs/, /series/, /series/confirm/ and /unsubscribe/.
TOKEN_IN_PATH = re.compile(r"(/(?:jobs|series/confirm|series|unsubscribe)/)[^/?#\s\"']+")
ELLIPSIS = "…"


def redact(text: str) -> str:
    """``text`` with every token of a public link replaced by "…"."""
    return TOKEN_IN_PATH.sub(lambda match: match.group(1) + ELLIPSIS, text)


class TokenlessLogger(Logger):
    """gunicorn's logger, with every text atom (request line, path, query, Referer,
    a redirect's Location, headers) redacted before the access line is written."""

    def atoms(self, resp, req, environ, request_time) -> dict:  # type: ignore[no-untyped-def]
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()}


class TokenFilter(logging.Filter):
    """Redacts tokens in a record's message (Django's "Not Found: /jobs/<token>/")."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
