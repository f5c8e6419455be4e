"""Structured logging: JSON lines when not on a terminal, one line per request.

The request line carries a request id, method, route, role, status and latency; it
never carries a key, a request body or a name (personal data stays out of logs).
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from typing import Any

import structlog

from timebank.settings import Settings


def configure(settings: Settings) -> None:
    as_json = settings.log_json if settings.log_json is not None else not sys.stderr.isatty()
    level = getattr(logging, settings.log_level, logging.INFO)
    renderer: Any = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


log = structlog.get_logger("timebank")


class RequestLogMiddleware:
    """Pure ASGI middleware (cheap on the hot path): request id in, one log line out."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        status = 500

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Errors raised by inner middleware (e.g. a missing key) become responses
            # further out; log the status they will get.
            status = getattr(exc, "status_code", None) or getattr(exc, "status", None) or 500
            raise
        finally:
            user = scope.get("user")
            route = scope.get("path_template") or scope.get("path", "")
            log.info(
                "request",
                request_id=request_id,
                method=scope.get("method"),
                route=route,
                role=getattr(getattr(user, "role", None), "value", None),
                status=status,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
            )


def _incoming_request_id(scope: dict[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if 0 < len(candidate) <= 64 and candidate.replace("-", "").isalnum():
                return candidate
    return None
