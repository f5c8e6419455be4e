"""Every read and write of the ``notifications`` outbox.

Typed SQLAlchemy Core statements (``select()``, ``insert()``, ``update()``) on the
SQLModel table of ``models.py``, run on an ``AsyncConnection``; reads return ``Row``
objects whose attributes are the model's columns.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.notifications.models import Notification

BATCH = 1000  # rows per INSERT (asyncpg takes at most 32767 parameters)


async def add_once(conn: AsyncConnection, rows: list[dict[str, Any]]) -> int:
    """Insert notifications, skipping any whose (lot, threshold) already has one; how many were new."""
    made = 0
    for start in range(0, len(rows), BATCH):
        statement = upsert(Notification).values(rows[start : start + BATCH])
        statement = statement.on_conflict_do_nothing(
            index_elements=["lot_id", "threshold_days", "community_id"]
        )
        made += len((await conn.execute(statement.returning(Notification.id))).all())
    return made


async def member_page(
    conn: AsyncConnection, community_id: uuid.UUID, member_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> Sequence[Row[Any]]:
    """Up to ``limit`` of the member's notifications, newest first, after ``after`` (none if unknown)."""
    query = select(Notification).where(
        Notification.community_id == community_id, Notification.member_id == member_id
    )
    if after is not None:
        anchor = (
            await conn.execute(
                select(Notification.created_at, Notification.id).where(Notification.id == after)
            )
        ).first()
        if anchor is None:
            return []
        query = query.where(tuple_(Notification.created_at, Notification.id) < tuple_(*anchor))
    order = (Notification.created_at.desc(), Notification.id.desc())
    return (await conn.execute(query.order_by(*order).limit(limit))).all()


async def lock_next_due(conn: AsyncConnection, community_id: uuid.UUID, now: datetime) -> Row[Any] | None:
    """The undelivered notification due first, locked; one another worker holds is skipped."""
    query = (
        select(Notification)
        .where(
            Notification.community_id == community_id,
            Notification.delivered_at.is_(None),
            Notification.next_attempt_at <= now,
        )
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return (await conn.execute(query)).first()


async def mark_delivered(conn: AsyncConnection, notification_id: uuid.UUID, now: datetime) -> None:
    await conn.execute(
        update(Notification)
        .where(Notification.id == notification_id)
        .values(delivered_at=now, attempts=Notification.attempts + 1, last_error=None)
    )


async def mark_failed(
    conn: AsyncConnection, notification_id: uuid.UUID, error: str, retry_at: datetime
) -> None:
    await conn.execute(
        update(Notification)
        .where(Notification.id == notification_id)
        .values(attempts=Notification.attempts + 1, last_error=error, next_attempt_at=retry_at)
    )


async def delivery_counts(conn: AsyncConnection, community_id: uuid.UUID) -> Row[Any]:
    """The community's notifications by delivery state: ``waiting`` (never tried),
    ``failing`` (tried, not delivered: retried later), ``delivered``; and the time of
    the last delivery."""
    n = Notification
    undelivered, tried = n.delivered_at.is_(None), n.attempts > 0
    query = select(
        func.count().filter(undelivered, ~tried).label("waiting"),
        func.count().filter(undelivered, tried).label("failing"),
        func.count().filter(~undelivered).label("delivered"),
        func.max(n.delivered_at).label("last_delivered_at"),
    ).where(n.community_id == community_id)
    return (await conn.execute(query)).one()


async def last_failure(conn: AsyncConnection, community_id: uuid.UUID) -> Row[Any] | None:
    """The undelivered notification whose delivery failed last (its retry is the latest)."""
    query = (
        select(Notification.id, Notification.attempts, Notification.last_error, Notification.next_attempt_at)
        .where(
            Notification.community_id == community_id,
            Notification.delivered_at.is_(None),
            Notification.last_error.is_not(None),
        )
        .order_by(Notification.next_attempt_at.desc())
        .limit(1)
    )
    return (await conn.execute(query)).first()
