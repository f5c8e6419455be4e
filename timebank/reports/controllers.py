"""HTTP routes of the reports (``/v1/reports``). HTTP only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from litestar import Controller, Request, Response, get
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank import schemas, web
from timebank.core.access import Principal, access
from timebank.core.roles import Role
from timebank.reports import service
from timebank.reports.snapshot import report_snapshot
from timebank.schemas import problems

PERIOD = "`from` and `to` are dates in the community's time zone; `from` is included, `to` is not."

Report = Callable[[AsyncConnection, Principal, date, date], Awaitable[dict[str, Any]]]


async def _answer(request: Request, report: Report, first: date, end: date) -> Response[Any]:
    """One report from one snapshot of the ledger (REPEATABLE READ)."""
    async with report_snapshot(web.engine(request)) as conn:
        body = await report(conn, web.principal(request), first, end)
    return web.json_response(body)


class ReportController(Controller):
    path = "/v1/reports"
    tags = ["reports"]

    @get(
        "/service",
        opt=access(Role.ADMIN, Role.AUDITOR),
        responses=problems(),
        summary="Approved service of a period: minutes by organisation, category and month; "
        "active and new volunteers; star levels now",
        description=PERIOD,
    )
    async def service(
        self, request: Request, first: schemas.PeriodFrom, end: schemas.PeriodTo
    ) -> Response[schemas.ServiceReport]:
        return await _answer(request, service.service_report, first, end)

    @get(
        "/points",
        opt=access(Role.ADMIN, Role.AUDITOR),
        responses=problems(),
        summary="Points of a period: issued, reversed, redeemed (by merchant, by reward), expired, "
        "donated, adjusted; outstanding (the liability); expiring in 30 and 90 days",
        description=PERIOD,
    )
    async def points(
        self, request: Request, first: schemas.PeriodFrom, end: schemas.PeriodTo
    ) -> Response[schemas.PointsReport]:
        return await _answer(request, service.points_report, first, end)

    @get(
        "/merchants",
        opt=access(Role.ADMIN, Role.AUDITOR),
        responses=problems(),
        summary="Every merchant's confirmed redemptions and points received in a period",
        description=PERIOD,
    )
    async def merchants(
        self, request: Request, first: schemas.PeriodFrom, end: schemas.PeriodTo
    ) -> Response[schemas.MerchantsReport]:
        return await _answer(request, service.merchants_report, first, end)
