"""Notifications for members: reminders before points expire, kept in an outbox.

A reminder is made 30 days and again 7 days before a lot expires (one per lot and
threshold, whatever runs twice: the table's unique key), and delivered to the
community's webhook, if it has one, by ``webhooks.deliver_due``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.community.service import member_exists
from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.notifications import queries
from timebank.points import queries as points_queries

THRESHOLDS_DAYS = (30, 7)

# For each threshold, the lots whose expiry falls between it and the next smaller one
# (a lot first seen 5 days ahead gets the 7-day reminder only).
WINDOWS = tuple(zip(THRESHOLDS_DAYS, (*THRESHOLDS_DAYS[1:], 0), strict=True))  # (30, 7), (7, 0)


def _reminder(lot: Any, days: int, now: datetime) -> dict[str, Any]:
    return {
        "community_id": lot.community_id,
        "member_id": lot.member_id,
        "kind": "points_expiring",
        "lot_id": lot.id,
        "threshold_days": days,
        "payload": {
            "type": "points_expiring",
            "community_id": str(lot.community_id),
            "member_id": str(lot.member_id),
            "lot_id": str(lot.id),
            "points": lot.remaining,
            "days": days,
            "expires_at": rfc3339(lot.expires_at),
        },
        "next_attempt_at": now,
    }


async def remind_expiring(engine: AsyncEngine, community_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """A reminder for each lot expiring within a threshold (once per lot and threshold)."""
    async with engine.begin() as conn:
        rows = [
            _reminder(lot, days, now)
            for days, below in WINDOWS
            for lot in await points_queries.lots_expiring_between(
                conn, community_id, now + timedelta(days=below), now + timedelta(days=days)
            )
        ]
        made = await queries.add_once(conn, rows)
    return {"notifications": made}


# The notices other packages send (the kinds migration 0010 admits besides points_expiring).
NOTICE_KINDS = frozenset({"activity_cancelled", "activity_promoted", "activity_reminder"})


async def notify(
    conn: AsyncConnection,
    community_id: uuid.UUID,
    kind: str,
    member_ids: list[uuid.UUID],
    payload: dict[str, Any],
    now: datetime,
) -> int:
    """A notice for each member, in the caller's transaction (so it exists if and only if
    what it tells of was committed), delivered to the webhook like any notification.
    Whether a notice is sent once is the caller's (it marks what it told)."""
    assert kind in NOTICE_KINDS, kind
    rows = [
        {
            "community_id": community_id,
            "member_id": m,
            "kind": kind,
            "payload": {"type": kind, "community_id": str(community_id), "member_id": str(m), **payload},
            "next_attempt_at": now,
        }
        for m in member_ids
    ]
    return await queries.add_once(conn, rows) if rows else 0


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
    # no such member, or another resident's: not found (not an empty page)
    await member_exists(conn, principal, member_id)
    rows = await queries.member_page(conn, principal.community_id, member_id, cursor, limit + 1)
    page = rows[:limit]
    return [notification_view(r) for r in page], (str(page[-1].id) if len(rows) > limit else None)
