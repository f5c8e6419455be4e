"""Notifications for members: reminders before points expire, kept in an outbox.

A reminder is made 30 days and again 7 days before a lot expires (one per lot and
threshold, whatever runs twice: the table's unique key), and delivered to the
community's webhook, if it has one, by ``webhooks.deliver_due``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.core.clock import rfc3339
from timebank.core.problems import NotFound
from timebank.core.roles import Role
from timebank.security import Principal
from timebank.volunteer.service import member_exists

THRESHOLDS_DAYS = (30, 7)

# For each threshold, the lots whose expiry falls between it and the next smaller one
# (a lot first seen 5 days ahead gets the 7-day reminder only).
_REMIND = text("""
    INSERT INTO notifications (community_id, member_id, kind, lot_id, threshold_days, payload, next_attempt_at)
    SELECT l.community_id, l.member_id, 'points_expiring', l.id, t.days,
           jsonb_build_object('type', 'points_expiring', 'community_id', l.community_id, 'member_id', l.member_id,
                              'lot_id', l.id, 'points', l.remaining, 'days', t.days,
                              'expires_at', to_char(l.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
           CAST(:now AS timestamptz)
      FROM points_lots l
      JOIN (VALUES (30, 7), (7, 0)) AS t(days, below) ON true
     WHERE l.community_id = :c AND l.remaining > 0
       AND l.expires_at > CAST(:now AS timestamptz) + make_interval(days => t.below)
       AND l.expires_at <= CAST(:now AS timestamptz) + make_interval(days => t.days)
    ON CONFLICT (lot_id, threshold_days) DO NOTHING
""")


async def remind_expiring(engine: AsyncEngine, community_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    async with engine.begin() as conn:
        made = (await conn.execute(_REMIND, {"c": community_id, "now": now})).rowcount
    return {"notifications": made}


def notification_view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "kind": row.kind,
        "member_id": str(row.member_id),
        "payload": dict(row.payload),
        "created_at": rfc3339(row.created_at),
        "delivered_at": None if row.delivered_at is None else rfc3339(row.delivered_at),
        "attempts": row.attempts,
    }


async def member_notifications(
    conn: AsyncConnection,
    principal: Principal,
    member_id: uuid.UUID,
    cursor: uuid.UUID | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    if principal.role is Role.RESIDENT and principal.subject_id != member_id:
        raise NotFound(f"member {member_id} not found")
    await member_exists(conn, principal, member_id)  # not an empty page for no such member
    rows = (
        await conn.execute(
            text(
                "SELECT * FROM notifications WHERE community_id = :c AND member_id = :m "
                "AND (CAST(:after AS uuid) IS NULL OR (created_at, id) < "
                "     (SELECT created_at, id FROM notifications WHERE id = :after)) "
                "ORDER BY created_at DESC, id DESC LIMIT :n"
            ),
            {"c": principal.community_id, "m": member_id, "after": cursor, "n": limit + 1},
        )
    ).all()
    page = rows[:limit]
    return [notification_view(r) for r in page], (str(page[-1].id) if len(rows) > limit else None)
