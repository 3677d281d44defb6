"""The API's version 1: one NinjaAPI, its routers, and errors as problem details."""

from __future__ import annotations

from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from jobs.api import jobs, series
from jobs.api.auth import AUTH
from jobs.api.problems import (
    ApiProblem,
    authentication_handler,
    http_error_handler,
    not_found_handler,
    problem_handler,
    server_error_handler,
    validation_handler,
)

DESCRIPTION = """Submit image jobs, follow them and download their zips from code.

Authenticate with an API key in `X-Api-Key` (or `Authorization: Bearer`). Errors are
RFC 9457 problem details (`application/problem+json`). See docs/api.md."""

api = NinjaAPI(
    title="imagedl API",
    version="1",
    description=DESCRIPTION,
    auth=AUTH,
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
api.add_router("", jobs.router)
api.add_router("", series.router)
api.add_exception_handler(ApiProblem, problem_handler)
api.add_exception_handler(ValidationError, validation_handler)
api.add_exception_handler(AuthenticationError, authentication_handler)
api.add_exception_handler(HttpError, http_error_handler)
api.add_exception_handler(Http404, not_found_handler)
api.add_exception_handler(Exception, server_error_handler)
