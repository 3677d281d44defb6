"""``GET /metrics`` on the web processes."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from jobs.ops.exposition import CONTENT_TYPE, metrics_access_allowed, metrics_text


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Loopback callers (unless a proxy's header names clients: then every request
    comes from loopback) and holders of the token; a 404 for anyone else."""
    allowed = metrics_access_allowed(
        request.META.get("REMOTE_ADDR", ""),
        request.headers.get("Authorization", ""),
        loopback_counts=not settings.IMAGEDL_CLIENT_IP_HEADER,
    )
    if not allowed:
        raise Http404
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE)
