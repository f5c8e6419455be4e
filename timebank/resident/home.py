"""The resident's own figures: home (balances, points expiring, star level, reminders),
history (what moved in and out, with receipts), service records and the certificate.

Each reads through the service its API route calls, with the person's principal:
balances as ``GET /v1/members/{id}/balances``, points lots as ``.../points``,
standing as ``GET /v1/members/{id}``, reminders as ``.../notifications``, entries as
``GET /v1/accounts/{id}/entries`` (newest first, posted only: ``ledger.history_page``),
records as ``.../service-records`` and the certificate as ``.../certificate?format=pdf``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get
from litestar.params import Parameter

from timebank import web
from timebank.core.access import access
from timebank.core.problems import DomainError
from timebank.core.roles import Role
from timebank.ledger import service as ledger
from timebank.notifications.service import member_notifications
from timebank.points.service import member_points
from timebank.resident import common
from timebank.resident.common import when
from timebank.volunteer import certificates, reading
from timebank.volunteer.standing import standing
from timebank.web import messages, templating
from timebank.web.i18n import N_
from timebank.web.templating import render

RESIDENT = access(Role.RESIDENT)
EXPIRING_DAYS = 30
REMINDERS_SHOWN = 5
ASSETS = ("HOUR", "POINT")
MAX_CERTIFICATE_DAYS = certificates.MAX_DAYS
BAD_PERIOD = N_("Choose a first and a last day, the last not before the first.")


def _history_item(entry: dict[str, Any]) -> dict[str, Any]:
    incoming = entry["direction"] == "credit"
    kind = entry["kind"]
    what = messages.entry_words(kind, incoming)
    return {
        **entry,
        "incoming": incoming,
        "what": what,
        "at": when(entry["created_at"]),
    }


class ResidentPages(Controller):
    path = "/me"

    @get("/", opt=RESIDENT)
    async def home(self, request: Request) -> Response[Any]:
        member = common.member_id(request)
        who = web.principal(request)
        async with web.engine(request).connect() as conn:
            balances = await common.balances(conn, request)
            points = await member_points(conn, who, member)
            star = await standing(conn, who.community_id, member)
            reminders, _ = await member_notifications(conn, who, member, None, REMINDERS_SHOWN)
        soon = datetime.now(UTC) + timedelta(days=EXPIRING_DAYS)
        expiring = [lot for lot in points["lots"] if when(lot["expires_at"]) <= soon]
        next_level = None if star["minutes_to_next_level"] is None else star["star_level"] + 1
        return render(
            request,
            "resident/home.html",
            hours=balances["HOUR"],
            points=balances["POINT"],
            expiring_points=sum(lot["remaining"] for lot in expiring),
            first_expiry=min((when(lot["expires_at"]) for lot in expiring), default=None),
            star=star,
            next_level=next_level,
            progress_max=star["lifetime_minutes"] + (star["minutes_to_next_level"] or 0),
            reminders=[
                {**r, "at": when(r["created_at"]), "expires": when(r["payload"].get("expires_at"))}
                for r in reminders
            ],
        )

    @get("/history", opt=RESIDENT)
    async def history(
        self,
        request: Request,
        asset: str = Parameter(query="asset", default="HOUR", max_length=10),
        cursor: str | None = Parameter(query="cursor", default=None, max_length=20),
    ) -> Response[Any]:
        if asset not in ASSETS:
            asset = "HOUR"
        before = web.int_cursor(cursor)
        async with web.engine(request).connect() as conn:
            balances = await common.balances(conn, request)
            items, next_cursor = await ledger.history_page(
                conn, web.principal(request), balances[asset]["account_id"], before, common.PAGE_SIZE
            )
        return render(
            request,
            "resident/history.html",
            asset=asset,
            balance=balances[asset],
            items=[_history_item(e) for e in items],
            next_cursor=next_cursor,
            first_page=before is None,
        )

    async def _records(self, request: Request, status: int = 200, **extra: Any) -> Response[Any]:
        cursor = request.query_params.get("cursor") or None
        who = request.scope["auth"]
        async with web.engine(request).connect() as conn:
            items, next_cursor = await reading.records_page(
                conn,
                web.principal(request),
                member_id=common.member_id(request),
                cursor=cursor[:100] if cursor else None,
                limit=common.PAGE_SIZE,
            )
        today = datetime.now(ZoneInfo(who.timezone)).date()
        context = {
            "items": [
                {
                    **r,
                    "status_words": messages.RECORD_STATUS.get(r["status"], r["status"]),
                    "started": when(r["started_at"]),
                }
                for r in items
            ],
            "next_cursor": next_cursor,
            "first_page": cursor is None,
            "period_from": date(today.year, 1, 1).isoformat(),
            "period_to": today.isoformat(),
            "today": today.isoformat(),
            "error": None,
            **extra,
        }
        return render(request, "resident/records.html", status, **context)

    @get("/records", opt=RESIDENT)
    async def records(self, request: Request) -> Response[Any]:
        return await self._records(request)

    @get("/certificate", opt=RESIDENT)
    async def certificate(
        self,
        request: Request,
        first: str = Parameter(query="from", default="", max_length=20),
        last: str = Parameter(query="to", default="", max_length=20),
    ) -> Response[Any]:
        """The certificate of my approved service over a period, as a PDF (the same
        service as ``GET /v1/members/{id}/certificate?format=pdf``)."""
        _ = templating.gettext(request)
        again = {"period_from": first, "period_to": last}
        try:
            period_from, period_to = date.fromisoformat(first), date.fromisoformat(last)
        except ValueError:
            return await self._records(request, 400, error=_(BAD_PERIOD), **again)
        if period_to < period_from or (period_to - period_from).days > MAX_CERTIFICATE_DAYS:
            return await self._records(request, 400, error=_(BAD_PERIOD), **again)
        public_url = web.settings(request).public_url or str(request.base_url)
        try:
            async with web.engine(request).begin() as conn:
                signed = await certificates.issue(
                    conn,
                    web.principal(request),
                    common.member_id(request),
                    period_from,
                    period_to,
                    request.app.state.signer,
                    public_url,
                )
        except DomainError as refused:
            return await self._records(request, refused.status, error=messages.explain(refused, _), **again)
        number = signed["certificate"]["number"]
        return Response(
            certificates.render_pdf(signed),
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'inline; filename="{number}.pdf"',
                "Cache-Control": "private, no-store",
            },
        )
