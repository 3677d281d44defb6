"""RFC 9457 problem details: every error of the API is ``application/problem+json``."""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path

from django.http import HttpRequest, HttpResponse

from jobs.lib.transient import is_transient

logger = logging.getLogger("imagedl.jobs")

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://imagedl.invalid/problems/"  # a stable name, not a page to fetch

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed with this key",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Invalid request",
    429: "Too many requests",
    500: "Server error",
    503: "Unavailable",
}
RETRY_AFTER_UNAVAILABLE = 5  # seconds: Cassandra coming back, as a job's run steps back


class ApiProblem(Exception):
    """Raised anywhere under an endpoint; becomes a problem response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str = "",
        errors: dict[str, list[str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or TITLES.get(status, "error").lower().replace(" ", "-")
        self.errors = errors
        self.retry_after = retry_after


def problem_response(problem: ApiProblem) -> HttpResponse:
    body: dict[str, object] = {
        "type": TYPE_BASE + problem.kind,
        "title": TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.errors:
        body["errors"] = problem.errors
    response = HttpResponse(json.dumps(body), status=problem.status, content_type=CONTENT_TYPE)
    if problem.retry_after is not None:
        response["Retry-After"] = str(problem.retry_after)
    return response


def problem_handler(request: HttpRequest, exc: ApiProblem) -> HttpResponse:
    return problem_response(exc)


def validation_handler(request: HttpRequest, exc) -> HttpResponse:
    """django-ninja's request validation (JSON types, missing fields) as field errors."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        location = [
            str(part) for part in error.get("loc", ()) if part not in ("body", "payload", "query", "path")
        ]
        errors.setdefault(".".join(location) or "body", []).append(str(error.get("msg", "invalid")))
    return problem_response(ApiProblem(422, "The request has invalid fields.", errors=errors))


def authentication_handler(request: HttpRequest, exc) -> HttpResponse:
    return problem_response(
        ApiProblem(
            401, "Send a valid API key in X-Api-Key or as Authorization: Bearer.", kind="unauthenticated"
        )
    )


def http_error_handler(request: HttpRequest, exc) -> HttpResponse:
    return problem_response(ApiProblem(exc.status_code, str(exc.message)))


def not_found_handler(request: HttpRequest, exc) -> HttpResponse:
    return problem_response(ApiProblem(404, "No such resource for this key.", kind="not-found"))


def server_error_handler(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Anything else: 503 with ``Retry-After`` while a dependency does not answer
    (Cassandra), else 500. Logged by type and place only: a message can quote a query."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    if is_transient(exc):
        logger.warning("api: %s at %s; answered 503", type(exc).__name__, where)
        detail = "The job store did not answer; try again shortly."
        problem = ApiProblem(503, detail, kind="unavailable", retry_after=RETRY_AFTER_UNAVAILABLE)
        return problem_response(problem)
    logger.error("api: %s at %s", type(exc).__name__, where)
    return problem_response(ApiProblem(500, "Something went wrong on our side.", kind="server-error"))
