"""How errors look on pages: a page in the person's language, never JSON or a trace.

Registered on the pages' router (the API keeps problem+json): no session → the
sign-in page (and back afterwards); a refusal → its sentence (``messages.explain``)
with the right status; a database outage → 503 "try again"; anything else → 500,
logged with its trace under the request id.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException

from timebank import edge, logs, outage
from timebank.core.problems import DomainError
from timebank.web import messages, templating
from timebank.web.i18n import N_


class SignInRequired(Exception):
    """A page for signed-in people was asked for without a live session."""


HTTP_MESSAGES = {
    400: "invalid-request",
    403: "forbidden",
    404: "not-found",
    429: "too-many-requests",
}
CSRF_MESSAGE = N_(
    "This form has expired or did not come from this site. Please go back, reload the page and try again."
)
NOT_FOUND_TITLE = N_("Page not found")
REFUSED_TITLE = N_("That could not be done")


def error_page(request: Request, status: int, message: str, title: str = REFUSED_TITLE) -> Response[Any]:
    _ = templating.gettext(request)
    return templating.render(request, "error.html", status=status, title=_(title), message=message)


def sign_in_required(request: Request, exc: SignInRequired) -> Response[Any]:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return templating.see_other(f"/sign-in?next={quote(target, safe='')}")


def domain_error(request: Request, exc: DomainError) -> Response[Any]:
    return error_page(request, exc.status, messages.explain(exc, templating.gettext(request)))


def http_error(request: Request, exc: HTTPException) -> Response[Any]:
    _ = templating.gettext(request)
    status = exc.status_code
    if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        return error_page(request, 403, _(CSRF_MESSAGE))
    if isinstance(exc, NotFoundException):
        return error_page(request, 404, messages.explain("not-found", _), NOT_FOUND_TITLE)
    response = error_page(request, status, messages.explain(HTTP_MESSAGES.get(status, "general"), _))
    for name in ("Allow", "Retry-After"):
        if exc.headers and name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response


def unexpected(request: Request, exc: Exception) -> Response[Any]:
    if outage.database_unavailable(exc):
        outage.STATE.failed(exc)
        response = error_page(
            request, 503, messages.explain("database-unavailable", templating.gettext(request))
        )
        response.headers["Retry-After"] = str(outage.RETRY_AFTER_SECONDS)
        return response
    logs.log.error(
        "unhandled error",
        request_id=edge.request_id(request.scope),
        route=request.scope.get("path_template"),
        error=type(exc).__name__,
        exc_info=exc,
    )
    return error_page(request, 500, messages.explain("general", templating.gettext(request)))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    SignInRequired: sign_in_required,
    DomainError: domain_error,
    HTTPException: http_error,
    Exception: unexpected,
}


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not an API client), for answers outside any route."""
    path = request.url.path
    api = path.startswith(("/v1/", "/schema", "/health", "/metrics", "/static/"))
    return not api and "text/html" in request.headers.get("accept", "")
