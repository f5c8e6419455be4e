"""Settlement: a district admin proposes, another approves (four eyes), positions go back.

A proposal fixes its lines (every non-zero position, per community and asset, at
that moment) and a statement of the crossings in its period; approving posts
exactly those lines, so what the second admin approved is what moves:

* the district's ledger: each community's position account ↔ the ``exchange`` account;
* each community's ledger: its ``clearing`` account ↔ its ``issuance`` account (value
  that arrived for good becomes the community's own issue; value that left for good
  is retired from it).

All parts commit together (``ledger.post_together``), so every clearing balance keeps
equal to its community's position. The four eyes are two different keys or people
(``district_settlements_four_eyes`` holds it in the database too).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.communities import community_zone
from timebank.core.ids import uuid7
from timebank.core.problems import BadRequest, Conflict, DomainError, NotFound
from timebank.core.terms import Asset, Direction, Kind, Layer, SystemRole
from timebank.districts import queries
from timebank.districts.service import positions, require_district_admin
from timebank.ledger import queries as ledger_queries
from timebank.ledger import service as ledger


class FourEyes(DomainError):
    # the same rule (and slug, status) as a service record's four-eyes correction
    slug, status, title = "four-eyes", 403, "Another person must approve this"


MAX_PERIOD_DAYS = 3 * 366


async def period(
    conn: AsyncConnection, district_id: uuid.UUID, first: date, end: date
) -> tuple[datetime, datetime]:
    """The instants of a period of days in the district's zone (``end`` not included)."""
    if end <= first or (end - first).days > MAX_PERIOD_DAYS:
        raise BadRequest(f"to is after from (to is not included), at most {MAX_PERIOD_DAYS} days")
    tz = await community_zone(conn, district_id)
    return datetime.combine(first, time(0), tz), datetime.combine(end, time(0), tz)


async def figures(conn: AsyncConnection, district_id: uuid.UUID, first: date, end: date) -> dict[str, Any]:
    """Crossings by pair and month, and each community's totals, from ``first`` to
    ``end`` (days in the district's zone, ``end`` not included)."""
    start, stop = await period(conn, district_id, first, end)
    d = await queries.district(conn, district_id)
    assert d is not None
    names = {r.community_id: r.name for r in await queries.members_of(conn, district_id)}
    rows = await queries.crossing_figures(conn, district_id, d.timezone, start, stop)
    totals: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}

    def total(community: uuid.UUID, asset: str) -> dict[str, Any]:
        return totals.setdefault(
            (community, asset),
            {
                "community_id": str(community),
                "name": names.get(community, ""),
                "asset": asset,
                "sent": 0,
                "received": 0,
                "crossings_out": 0,
                "crossings_in": 0,
            },
        )

    by_pair = []
    for r in rows:
        by_pair.append(
            {
                "month": r.month.isoformat()[:7],
                "from_community_id": str(r.from_community_id),
                "to_community_id": str(r.to_community_id),
                "asset": r.asset,
                "crossings": r.crossings,
                "sent": int(r.sent),
                "received": int(r.received),
            }
        )
        out = total(r.from_community_id, r.asset)
        out["sent"] += int(r.sent)
        out["crossings_out"] += r.crossings
        into = total(r.to_community_id, r.asset)
        into["received"] += int(r.received)
        into["crossings_in"] += r.crossings
    return {
        "district_id": str(district_id),
        "period": {"from": first.isoformat(), "to": end.isoformat()},
        "by_pair_and_month": by_pair,
        "by_community": sorted(totals.values(), key=lambda t: (t["name"], t["community_id"], t["asset"])),
    }


async def propose(conn: AsyncConnection, principal: Principal, first: date, end: date) -> dict[str, Any]:
    district_id = require_district_admin(principal)
    statement = await figures(conn, district_id, first, end)
    start, stop = await period(conn, district_id, first, end)
    lines = [
        {"community_id": p["community_id"], "name": p["name"], "asset": asset, "amount": a["position"]}
        for p in await positions(conn, district_id)
        for asset, a in sorted(p["assets"].items())
        if a["position"] != 0
    ]
    if not lines:
        raise BadRequest("every position is already zero: there is nothing to settle")
    try:
        async with conn.begin_nested():
            row = await queries.insert_settlement(
                conn,
                district_id=district_id,
                period_from=start,
                period_to=stop,
                lines=lines,
                proposed_by=principal.key_id,
            )
    except Exception as exc:
        if "district_settlements_one_open" in str(exc):
            raise Conflict(
                "a settlement is already waiting for approval: approve or cancel it first"
            ) from None
        raise
    return await settlement_view(conn, row, statement)


async def approve(conn: AsyncConnection, principal: Principal, settlement_id: uuid.UUID) -> dict[str, Any]:
    district_id = require_district_admin(principal)
    row = await _open(conn, district_id, settlement_id)
    if row.proposed_by == principal.key_id:
        raise FourEyes("the admin who proposed a settlement may not approve it: another district admin must")
    district_tx = uuid7()
    accounts = await queries.position_accounts(conn, district_id)
    exchange = {
        a: await ledger_queries.system_account_id(conn, district_id, SystemRole.EXCHANGE.value, a)
        for a in ("HOUR", "POINT")
    }
    district_legs: list[ledger.Leg] = []
    community_legs: dict[uuid.UUID, list[ledger.Leg]] = {}
    for line in row.lines:
        community = uuid.UUID(line["community_id"])
        asset, amount = Asset(line["asset"]), int(line["amount"])
        position_account = accounts[(community, asset.value)].id
        clearing = await ledger_queries.system_account_id(
            conn, community, SystemRole.CLEARING.value, asset.value
        )
        issuance = await ledger_queries.system_account_id(
            conn, community, SystemRole.ISSUANCE.value, asset.value
        )
        # A positive position (the community received more than it sent) is taken off its
        # district account and, at home, off its clearing account into issuance; a
        # negative one the other way round.
        if amount > 0:
            district_legs += _move(position_account, exchange[asset.value], asset, amount)
            community_legs.setdefault(community, []).extend(_move(issuance, clearing, asset, amount))
        else:
            district_legs += _move(exchange[asset.value], position_account, asset, -amount)
            community_legs.setdefault(community, []).extend(_move(clearing, issuance, asset, -amount))
    memo = f"settlement {row.id}"
    parts = [ledger.Part(district_id, Kind.SETTLEMENT, district_legs, principal.key_id, memo, id=district_tx)]
    parts += [
        ledger.Part(community, Kind.SETTLEMENT, legs, principal.key_id, memo)
        for community, legs in sorted(community_legs.items())
    ]
    await ledger.post_together(conn, parts)
    await queries.insert_settlement_parts(
        conn,
        [
            {
                "settlement_id": row.id,
                "district_id": district_id,
                "community_id": p.community_id,
                "transaction_id": p.id,
            }
            for p in parts[1:]
        ],
    )
    await queries.update_settlement(
        conn,
        row.id,
        approved_by=principal.key_id,
        approved_at=func.now(),
        district_transaction_id=district_tx,
    )
    return await settlement_view(conn, await queries.settlement(conn, district_id, row.id))


async def cancel(conn: AsyncConnection, principal: Principal, settlement_id: uuid.UUID) -> dict[str, Any]:
    district_id = require_district_admin(principal)
    row = await _open(conn, district_id, settlement_id)
    await queries.update_settlement(conn, row.id, cancelled_by=principal.key_id, cancelled_at=func.now())
    return await settlement_view(conn, await queries.settlement(conn, district_id, row.id))


async def _open(conn: AsyncConnection, district_id: uuid.UUID, settlement_id: uuid.UUID) -> Any:
    row = await queries.settlement(conn, district_id, settlement_id, lock=True)
    if row is None:
        raise NotFound(f"settlement {settlement_id} not found")
    if row.approved_at is not None or row.cancelled_at is not None:
        raise Conflict(
            f"settlement {settlement_id} was already {'approved' if row.approved_at else 'cancelled'}"
        )
    return row


def _move(debit: uuid.UUID, credit: uuid.UUID, asset: Asset, amount: int) -> list[ledger.Leg]:
    return [
        ledger.Leg(debit, asset, Direction.DEBIT, Layer.POSTED, amount),
        ledger.Leg(credit, asset, Direction.CREDIT, Layer.POSTED, amount),
    ]


async def get(conn: AsyncConnection, principal: Principal, settlement_id: uuid.UUID) -> dict[str, Any]:
    district_id = require_district_admin(principal)
    row = await queries.settlement(conn, district_id, settlement_id)
    if row is None:
        raise NotFound(f"settlement {settlement_id} not found")
    first, end = await _days(conn, row)
    return await settlement_view(conn, row, await figures(conn, district_id, first, end))


async def _days(conn: AsyncConnection, row: Any) -> tuple[date, date]:
    tz = await community_zone(conn, row.district_id)
    return row.period_from.astimezone(tz).date(), row.period_to.astimezone(tz).date()


async def listing(conn: AsyncConnection, principal: Principal) -> list[dict[str, Any]]:
    district_id = require_district_admin(principal)
    return [await settlement_view(conn, r) for r in await queries.settlements(conn, district_id)]


async def settlement_view(
    conn: AsyncConnection, row: Any, statement: dict[str, Any] | None = None
) -> dict[str, Any]:
    status = "approved" if row.approved_at else ("cancelled" if row.cancelled_at else "proposed")
    first, end = await _days(conn, row)
    parts = await queries.settlement_parts(conn, row.id) if row.approved_at else []
    view = {
        "id": str(row.id),
        "district_id": str(row.district_id),
        "status": status,
        "period": {"from": first.isoformat(), "to": end.isoformat()},
        "lines": row.lines,
        "proposed_by": str(row.proposed_by),
        "proposed_at": rfc3339(row.proposed_at),
        "approved_by": None if row.approved_by is None else str(row.approved_by),
        "approved_at": None if row.approved_at is None else rfc3339(row.approved_at),
        "cancelled_at": None if row.cancelled_at is None else rfc3339(row.cancelled_at),
        "district_transaction_id": None
        if row.district_transaction_id is None
        else str(row.district_transaction_id),
        "parts": [
            {"community_id": str(p.community_id), "transaction_id": str(p.transaction_id)} for p in parts
        ],
    }
    if statement is not None:
        view["statement"] = statement
    return view
