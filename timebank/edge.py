"""What every request and response passes at the edge, once, for every route.

Requests (``EdgeMiddleware``, before authentication and any handler):

* the ``Host`` must be one the service answers for (``Settings.allowed_hosts``), so a
  link built from the request (a certificate's ``verify_url``) can never name a host
  an attacker chose;
* the body may not exceed the route's limit (413), checked from ``Content-Length`` and
  again while it streams in;
* text anywhere (path, query, JSON strings and keys) carries no NUL or other control
  character (tab, CR and LF are allowed in JSON strings: a memo may have lines);
* integers (JSON numbers, query values) fit in 64 bits, JSON nests at most
  ``MAX_JSON_DEPTH`` deep, and a date or date-time is within ``YEAR_MIN``–``YEAR_MAX``.

Each refusal is a 400 (or 413) problem+json, before anything reads the database, so
no route can turn such input into a 500 and none needs to repeat the checks.

Responses (``response_headers``, a ``before_send`` hook that sees every response,
errors and unknown routes included): ``x-request-id``, and the security headers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from timebank.core.problems import PROBLEM_MEDIA_TYPE, problem_body

MAX_JSON_DEPTH = 32
MAX_QUERY_BYTES = 4096
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
YEAR_MIN, YEAR_MAX = 1900, 2199
# Controls other than tab, LF and CR; DEL; lone surrogates (PostgreSQL stores neither).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_CONTROL_STRICT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # paths and queries: none at all
_INTEGER = re.compile(r"[+-]?\d+")
_DATE = re.compile(r"(\d{4,})-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|z|[+-]\d{2}:?\d{2})?)?")

# Paths a load balancer, an orchestrator's probe or a scraper reach by address: they
# build no links, so they answer whatever the Host.
HOST_EXEMPT_PREFIXES = ("/health/", "/metrics")

REQUEST_ID_KEY = "timebank.request_id"


class EdgeRefusal(Exception):
    def __init__(self, status: int, slug: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail


def _bad(detail: str) -> EdgeRefusal:
    return EdgeRefusal(400, "invalid-request", "The request is not valid", detail)


def check_text(value: str, where: str, strict: bool = False) -> None:
    if (_CONTROL_STRICT if strict else _CONTROL).search(value):
        raise _bad(f"{where} contains a control character (such as NUL), which no field accepts")
    match = _DATE.fullmatch(value)
    if match is not None and not YEAR_MIN <= int(match.group(1)) <= YEAR_MAX:
        raise _bad(f"{where} is a date outside {YEAR_MIN}–{YEAR_MAX}")


def check_integer(value: int, where: str) -> None:
    if not INT64_MIN <= value <= INT64_MAX:
        raise _bad(f"{where} is an integer beyond 64 bits")


def check_json(value: Any, where: str = "body", depth: int = 0) -> None:
    """Walk a decoded JSON document once (iteratively bounded by ``MAX_JSON_DEPTH``)."""
    if depth > MAX_JSON_DEPTH:
        raise _bad(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, bool) or value is None or isinstance(value, float):
        return
    elif isinstance(value, int):
        check_integer(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, f"a key in {where}")
            check_json(item, f"{where}.{key}" if len(where) < 80 else where, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]" if len(where) < 80 else where, depth + 1)


def check_query(raw: bytes) -> None:
    if len(raw) > MAX_QUERY_BYTES:
        raise EdgeRefusal(
            414,
            "uri-too-long",
            "The request's address is too long",
            f"the query string is longer than {MAX_QUERY_BYTES} bytes",
        )
    if not raw:
        return
    for key, value in parse_qsl(
        raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict"
    ):
        check_text(key, "a query parameter name", strict=True)
        check_text(value, f"query parameter {key!r}", strict=True)
        if _INTEGER.fullmatch(value):
            check_integer(int(value), f"query parameter {key!r}")


def check_path(path: str) -> None:
    check_text(path, "the path", strict=True)
    for segment in path.split("/"):
        if _INTEGER.fullmatch(segment):
            check_integer(int(segment), "a path segment")


def host_name(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = value.decode("latin-1").strip().lower()
            try:
                return urlsplit("//" + host).hostname
            except ValueError:
                return None
    return None


async def _send_problem(
    send: Any, refusal: EdgeRefusal, path: str, extra_headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = msgspec.json.encode(
        problem_body(refusal.slug, refusal.title, refusal.status, refusal.detail, path)
    )
    await send(
        {
            "type": "http.response.start",
            "status": refusal.status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class EdgeMiddleware(ASGIMiddleware):
    """Refuses bad input before any handler (HTTP only)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Any, receive: Any, send: Any, next_app: Any) -> None:
        try:
            self._check_host(scope)
            check_path(scope.get("path", ""))
            check_query(scope.get("query_string", b""))
            receive = await self._checked_body(scope, receive)
        except EdgeRefusal as refusal:
            await _send_problem(send, refusal, scope.get("path", ""))
            return
        except UnicodeDecodeError:
            await _send_problem(send, _bad("the query string is not valid UTF-8"), scope.get("path", ""))
            return
        await next_app(scope, receive, send)

    @staticmethod
    def _check_host(scope: dict[str, Any]) -> None:
        path = scope.get("path", "")
        if path.startswith(HOST_EXEMPT_PREFIXES):
            return
        allowed = scope["app"].state.settings.allowed_hosts
        if "*" in allowed:
            return
        host = host_name(scope)
        if host not in allowed:
            raise EdgeRefusal(
                400,
                "invalid-host",
                "This service does not answer for that host",
                "the Host header names a host this service is not configured for "
                "(TIMEBANK_PUBLIC_URL, TIMEBANK_ALLOWED_HOSTS)",
            )

    @staticmethod
    async def _checked_body(scope: dict[str, Any], receive: Any) -> Any:
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE") and not _declared_length(scope):
            return receive
        handler = scope.get("route_handler")
        limit = handler.resolve_request_max_body_size() if handler is not None else None
        declared = _declared_length(scope)
        if limit is not None and declared is not None and declared > limit:
            raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                return _replay(b"".join(chunks), receive, first=message)
            chunk = message.get("body", b"")
            size += len(chunk)
            if limit is not None and size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        stripped = body.lstrip()
        if stripped[:1] in (b"{", b"["):
            try:
                document = msgspec.json.decode(body)
            except RecursionError:
                raise _bad(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels") from None
            except msgspec.DecodeError:
                document = None  # not JSON after all: the route's own decoding answers
            if document is not None:
                check_json(document)
        return _replay(body, receive)


def _declared_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                raise _bad("Content-Length is not a number") from None
    return None


def _too_large(limit: int) -> EdgeRefusal:
    return EdgeRefusal(
        413,
        "payload-too-large",
        "The request body is too large",
        f"this route accepts bodies of at most {limit} bytes",
    )


def _replay(body: bytes, receive: Any, first: dict[str, Any] | None = None) -> Any:
    """A ``receive`` that hands the app the body already read, then the real channel."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return first or {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# --- responses ---------------------------------------------------------------------

API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The API reference (/schema) loads its script and style from this service only.
SCHEMA_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    b"form-action 'none'"
)
_ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def request_id(scope: dict[str, Any]) -> str:
    """The request's id: the caller's ``X-Request-Id`` when it is sane, else a new one (once per request)."""
    state = scope.setdefault("state", {})
    rid = state.get(REQUEST_ID_KEY)
    if rid is None:
        rid = state[REQUEST_ID_KEY] = _incoming_request_id(scope) or uuid.uuid4().hex
    return rid


def _incoming_request_id(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if 0 < len(candidate) <= 64 and candidate.replace("-", "").isalnum():
                return candidate
    return None


async def response_headers(message: dict[str, Any], scope: dict[str, Any]) -> None:
    """``before_send`` hook: every response gets its request id and the security headers.

    Responses are never stored by caches (``no-store``) unless a route says otherwise:
    API answers carry personal data and secrets (new keys, tokens, voucher codes).
    """
    if message["type"] != "http.response.start":
        return
    headers = list(message.get("headers") or ())
    names = {name.lower() for name, _ in headers}
    headers.append((b"x-request-id", request_id(scope).encode()))
    headers.extend(h for h in _ALWAYS if h[0] not in names)
    if b"content-security-policy" not in names:
        schema = scope.get("path", "").startswith("/schema")
        headers.append((b"content-security-policy", SCHEMA_CSP if schema else API_CSP))
    if b"cache-control" not in names:
        headers.append((b"cache-control", b"no-store"))
    message["headers"] = headers
