"""Pages that are the same for everyone, rendered once per process.

The blank form (``GET /``) is some twenty fields through Django's widget templates: it
cost about 25 ms of CPU a request, for a page that differs between visitors only in its
CSRF token. It is rendered once per day (its date field starts at today), language and
settings, with a placeholder where the token goes; each request gets a copy with its own
token put in (``django.middleware.csrf.get_token``, which also sets the cookie, as the
template's ``{% csrf_token %}`` does). Anything a person sent (a form with errors, a
resubmission's values) is rendered per request as before.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable

from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.utils import translation

# Per process, random: nothing a visitor sends can contain it (the blank page quotes
# nothing of theirs anyway).
CSRF_PLACEHOLDER = f"csrf{secrets.token_hex(16)}"


_pages: dict[tuple[str, dt.date, str], str] = {}
KEPT = 16  # pages kept (a new day's replace the old ones)


def shared_html(request: HttpRequest, key: str, today: dt.date, render: Callable[[dict], str]) -> str:
    """The page ``key`` for ``today`` in the active language: rendered once by
    ``render(context_extra)`` (``context_extra`` to be added to its template context),
    then copied with this request's CSRF token. (Two threads may render it at once at
    first: the same text, the last one kept.)"""
    name = (key, today, translation.get_language() or "")
    html = _pages.get(name)
    if html is None:
        html = render({"csrf_token": CSRF_PLACEHOLDER})
        if len(_pages) >= KEPT:
            _pages.clear()
        _pages[name] = html
    return html.replace(CSRF_PLACEHOLDER, get_token(request))


def shared_html_forget(**_signal_kwargs: object) -> None:
    """Drop every rendered page (a ``setting_changed`` receiver: tests that override
    settings shown on the page see them)."""
    _pages.clear()
