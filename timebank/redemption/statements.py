"""A merchant's statement: its confirmed redemptions between two local dates, with
totals, as JSON or as CSV for a spreadsheet (what the merchant settles with the
community)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community import queries as community_queries
from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.communities import community_zone
from timebank.core.problems import BadRequest, Forbidden, NotFound
from timebank.core.roles import PartyKind, Role
from timebank.redemption import queries, rules

MAX_STATEMENT_DAYS = 366
CSV_COLUMNS = ("redemption_id", "confirmed_at", "reward_id", "title", "member_id", "points", "transaction_id")


async def _check_request(
    conn: AsyncConnection, principal: Principal, merchant_id: uuid.UUID, first: date, last: date
) -> None:
    if principal.role is Role.MERCHANT and principal.subject_id != merchant_id:
        raise NotFound(f"merchant {merchant_id} not found")
    if principal.role not in (Role.MERCHANT, Role.ADMIN, Role.AUDITOR):
        raise Forbidden("a statement is for its merchant, the admins and the auditors")
    if not await community_queries.party_exists(
        conn, principal.community_id, merchant_id, PartyKind.MERCHANT
    ):
        raise NotFound(f"merchant {merchant_id} not found")
    if last < first or (last - first).days >= MAX_STATEMENT_DAYS:
        raise BadRequest(f"to is on or after from, at most {MAX_STATEMENT_DAYS} days")


def _item(row: Any) -> dict[str, Any]:
    return {
        "redemption_id": str(row.id),
        "confirmed_at": rfc3339(row.resolved_at),
        "reward_id": str(row.reward_id),
        "title": row.title,
        "member_id": str(row.member_id),
        # what the merchant received: the price, or across communities the worth of what
        # the member paid at the rate of the hold (at least the price)
        "points": rules.worth_there(row.paid_points, row.rate_from, row.rate_to),
        "transaction_id": str(row.resolution_id),
    }


async def statement(
    conn: AsyncConnection,
    principal: Principal,
    merchant_id: uuid.UUID,
    first: date,
    last: date,
) -> dict[str, Any]:
    """A merchant's confirmed redemptions between two local dates (inclusive), with totals."""
    await _check_request(conn, principal, merchant_id, first, last)
    tz: ZoneInfo = await community_zone(conn, principal.community_id)
    start = datetime.combine(first, time(0), tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tz)
    items = [
        _item(r)
        for r in await queries.confirmed_between(conn, principal.community_id, merchant_id, start, end)
    ]
    return {
        "merchant_id": str(merchant_id),
        "from": first.isoformat(),
        "to": last.isoformat(),
        "timezone": tz.key,
        "items": items,
        "totals": {"redemptions": len(items), "points": sum(i["points"] for i in items)},
    }


def statement_csv(body: dict[str, Any]) -> str:
    """The statement as CSV (UTF-8 with BOM, so spreadsheet programs read the Chinese)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in body["items"]:
        writer.writerow([item[c] for c in CSV_COLUMNS])
    writer.writerow(
        ["total", f"{body['totals']['redemptions']} redemptions", "", "", "", body["totals"]["points"], ""]
    )
    return out.getvalue()
