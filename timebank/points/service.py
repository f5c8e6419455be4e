"""Points lots: each credit of love points to a member, spent oldest-expiry first.

The lots move with the ledger, in the database (``points_follow_entry``, migration
0004): nothing here writes them. This module reads them for members and staff.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community.service import member_exists
from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.problems import Forbidden, NotFound
from timebank.core.roles import Role
from timebank.core.terms import Asset
from timebank.ledger import queries as ledger_queries
from timebank.points import queries

MAX_LOTS = 1000


def lot_view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "points": row.points,
        "remaining": row.remaining,
        "credited_at": rfc3339(row.credited_at),
        "expires_at": rfc3339(row.expires_at),
        "transaction_id": str(row.transaction_id),
        "record_id": None if row.record_id is None else str(row.record_id),
    }


async def member_points(conn: AsyncConnection, principal: Principal, member_id: uuid.UUID) -> dict[str, Any]:
    """A member's points: balance, what is free to spend, and the open lots by expiry."""
    await member_exists(conn, principal, member_id)  # a resident reads their own only
    account = await ledger_queries.party_account(conn, principal.community_id, member_id, Asset.POINT)
    if account is None:
        raise NotFound(f"member {member_id} not found")
    lots = await queries.open_lots(conn, account.id, MAX_LOTS)
    return {
        "member_id": str(member_id),
        "account_id": str(account.id),
        "balance": account.posted,
        "available": account.available,
        "lots": [lot_view(r) for r in lots],
    }


async def expiring_ahead(
    conn: AsyncConnection, principal: Principal, now: datetime, days: tuple[int, int] = (30, 90)
) -> dict[str, Any]:
    """The community's points that expire in the next ``days[0]`` and ``days[1]`` days
    (points left in open lots; the expiry job takes them when their time comes), and in
    how many lots. For the community's staff and board."""
    if principal.role not in (Role.ADMIN, Role.AUDITOR):
        raise Forbidden("the points expiring in the community are for its staff and board")
    near, far = days
    row = await queries.points_expiring_between(
        conn, principal.community_id, now, now + timedelta(days=far), now + timedelta(days=near)
    )
    return {
        str(near): {"points": int(row.soon_points), "lots": row.soon_lots},
        str(far): {"points": int(row.points), "lots": row.lots},
    }
