"""Liveness (no database) and readiness (the database answers)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from sqlalchemy import text

from timebank import web
from timebank.security import PUBLIC


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get("/live", opt=PUBLIC, summary="The process is up (does not touch the database)")
    async def live(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", opt=PUBLIC, summary="The service can reach its database")
    async def ready(self, request: Request) -> Response[Any]:
        try:
            async with web.engine(request).connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return Response({"status": "unavailable", "checks": {"database": type(exc).__name__}}, status_code=503)
        return Response({"status": "ok", "checks": {"database": "ok"}})
