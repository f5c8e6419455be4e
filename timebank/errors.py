"""How every error becomes an answer: application/problem+json, once, for all routes.

Domain errors carry their own type and status; Litestar's HTTP errors get ours (with
their headers: ``Allow`` on a 405, ``Retry-After`` on a 429); a database outage is a
503 with ``Retry-After``; anything else is a bug: a 500 that says nothing of it, and
the traceback in the server's log under the request id.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from sqlalchemy import exc as sa_exc

from timebank import edge, logs, outage
from timebank.core.problems import PROBLEM_MEDIA_TYPE, DomainError, problem_body
from timebank.web import failures

HTTP_SLUGS = {
    400: ("invalid-request", "The request is not valid"),
    401: ("unauthorized", "A valid API key is required"),
    403: ("forbidden", "This key may not do that"),
    404: ("not-found", "No such resource"),
    405: ("method-not-allowed", "This method is not allowed here"),
    413: ("payload-too-large", "The request body is too large"),
    415: ("unsupported-media-type", "Send application/json"),
    429: ("too-many-requests", "Too many requests"),
}


def _problem(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(content=body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def domain_error_handler(request: Request, exc: DomainError) -> Response[Any]:
    # A refusal that says when to try again says it in the header too, like every 429.
    wait = exc.extra.get("retry_after") if exc.status == 429 else None
    headers = {"Retry-After": str(wait)} if isinstance(wait, int) else None
    return _problem(exc.status, exc.to_problem(request.url.path), headers)


def http_error_handler(request: Request, exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status in (404, 405) and failures.wants_page(request):  # a browser on a path no page has
        return failures.http_error(request, exc)
    slug, title = HTTP_SLUGS.get(status, ("http-error", "The request failed"))
    extra: dict[str, Any] = {}
    detail = exc.detail if exc.detail and exc.detail != title else None
    if isinstance(exc, ValidationException) and exc.extra:
        extra["errors"] = exc.extra
        # "Validation failed for POST …" says nothing a person can fix: say what is wrong.
        messages = [
            # Litestar's word for a missing body is the parameter's name, quoted: say it plainly.
            "send a JSON object as the request body" if e["message"] == "'data'" else e["message"]
            for e in exc.extra
            if isinstance(e, dict) and e.get("message")
        ]
        if messages:
            detail = "; ".join(messages)
    headers = dict(exc.headers or {})  # Allow on a 405, Retry-After on a 429
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return _problem(
        status, problem_body(slug, title, status, detail, request.url.path, **extra), headers or None
    )


def unexpected_error_handler(request: Request, exc: Exception) -> Response[Any]:
    # The traceback goes to the server's log under the request id; the answer says nothing of it.
    logs.log.error(
        "unhandled error",
        request_id=edge.request_id(request.scope),
        route=request.scope.get("path_template"),
        error=type(exc).__name__,
        exc_info=exc,
    )
    return _problem(
        500, problem_body("internal-error", "Something went wrong on our side", 500, None, request.url.path)
    )


def database_error_handler(request: Any, exc: Exception) -> Any:
    """Litestar exception handler: 503 + Retry-After for an outage, else the usual 500."""
    if not outage.database_unavailable(exc):
        return unexpected_error_handler(request, exc)  # a real bug: 500, logged with its trace
    outage.STATE.failed(exc)
    body = problem_body(
        "database-unavailable",
        "The database is unavailable",
        503,
        "the service cannot reach its database right now; nothing was changed by this request unless a "
        "retry with the same Idempotency-Key says so. Try again after Retry-After seconds.",
        request.url.path,
    )
    return Response(
        content=body,
        status_code=503,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={"Retry-After": str(outage.RETRY_AFTER_SECONDS)},
    )


# Registered in the app's exception_handlers: the classes outages arrive as. Anything of
# these that is not an outage is handed on to the 500 handler.
EXCEPTION_HANDLERS: dict[type[Exception], Any] = dict.fromkeys(
    (
        sa_exc.SQLAlchemyError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
        OSError,
    ),
    database_error_handler,
)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error_handler,
    HTTPException: http_error_handler,
    # The classes an outage arrives as; any of them that is not an outage goes on to the 500.
    **dict.fromkeys(
        (
            sa_exc.SQLAlchemyError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
            OSError,
        ),
        database_error_handler,
    ),
    Exception: unexpected_error_handler,
}
