"""Who is calling: an API key in ``X-Api-Key`` or ``Authorization: Bearer``.

Never a cookie: a session gives no access to the API, so CSRF does not apply. A key
that is unknown, wrong or revoked gets 401; a read-only key may only read (403
otherwise); each key has its own rate (IMAGEDL_API_RATE_PER_KEY, 429 with
``Retry-After``).
"""

from __future__ import annotations

import time

from django.http import HttpRequest
from ninja.security import APIKeyHeader, HttpBearer

from jobs.api.problems import ApiProblem
from jobs.lib.ratelimit import allow, configured_rate
from jobs.models import ApiKey, ApiScope
from jobs.store.api_keys import api_key_find

READ_METHODS = ("GET", "HEAD", "OPTIONS")


def retry_after(scope: str) -> int:
    """Seconds until the current window of the ``scope`` limit ends."""
    _, window = configured_rate(scope)
    return window - int(time.time()) % window if window else 1


def key_check(request: HttpRequest, raw: str | None) -> ApiKey | None:
    """The caller's key, or None (401); raises 403 for a read-only key that writes and
    429 past the key's rate."""
    if not raw:
        return None
    key = api_key_find(raw.strip())
    if key is None:
        return None
    if key.scope != ApiScope.READ_WRITE and request.method not in READ_METHODS:
        raise ApiProblem(403, "This key is read-only: it may only GET.", kind="read-only-key")
    if not allow("api_key", key.prefix, configured_rate("api_key")):
        raise ApiProblem(
            429, "This key made too many requests.", kind="rate-limited", retry_after=retry_after("api_key")
        )
    return key


class ApiKeyHeaderAuth(APIKeyHeader):
    param_name = "X-Api-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        return key_check(request, key)


class BearerAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return key_check(request, token)


AUTH = [ApiKeyHeaderAuth(), BearerAuth()]
