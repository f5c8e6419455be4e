"""Liveness (no database) and readiness (the database answers; the last nightly audit's result)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from sqlalchemy import text

from timebank import schemas, web
from timebank.core.access import PUBLIC
from timebank.jobs.service import last_audit


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get("/live", opt=PUBLIC, security=[{}], summary="The process is up (does not touch the database)")
    async def live(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/ready",
        opt=PUBLIC,
        security=[{}],
        responses=schemas.READY_RESPONSES,
        summary="The service can reach its database",
    )
    async def ready(self, request: Request) -> Response[Any]:
        try:
            async with web.engine(request).connect() as conn:
                await conn.execute(text("SELECT 1"))
                audit = await last_audit(conn)
        except Exception as exc:
            return Response(
                {"status": "unavailable", "checks": {"database": type(exc).__name__}}, status_code=503
            )
        # A failed nightly audit is shown (and logged as an error by the job), but does
        # not take the service out of rotation: people must still see what it says.
        return Response({"status": "ok", "checks": {"database": "ok", "audit": audit}})
