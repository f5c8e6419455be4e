"""Points lots: each credit of love points to a member, spent oldest-expiry first.

The lots move with the ledger, in the database (``points_follow_entry``, migration
0004): nothing here writes them. This module reads them for members and staff.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.clock import rfc3339
from timebank.core.problems import NotFound
from timebank.core.roles import Role
from timebank.security import Principal

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
    if principal.role is Role.RESIDENT and principal.subject_id != member_id:
        raise NotFound(f"member {member_id} not found")
    account = (
        await conn.execute(
            text(
                "SELECT a.* FROM accounts a JOIN parties p ON p.id = a.party_id "
                "WHERE a.party_id = :m AND a.community_id = :c AND a.asset = 'POINT' AND p.kind = 'member'"
            ),
            {"m": member_id, "c": principal.community_id},
        )
    ).first()
    if account is None:
        raise NotFound(f"member {member_id} not found")
    lots = (
        await conn.execute(
            text(
                "SELECT * FROM points_lots WHERE account_id = :a AND remaining > 0 ORDER BY expires_at, id LIMIT :n"
            ),
            {"a": account.id, "n": MAX_LOTS},
        )
    ).all()
    return {
        "member_id": str(member_id),
        "account_id": str(account.id),
        "balance": account.credits_posted - account.debits_posted,
        "available": account.credits_posted - account.debits_posted - account.debits_pending,
        "lots": [lot_view(r) for r in lots],
    }
