"""Every read of the points tables (``points_lots``; ``points_consumptions`` is read
by the audit only). Nothing here writes them: the lots move with the ledger, in the
database (``points_follow_entry``, migration 0004).

Reads on an ``AsyncConnection`` are typed SQLAlchemy Core ``select()`` statements on
the SQLModel tables of ``models.py``, returning ``Row`` objects with the model's
columns. The expiry job works in asyncpg batches beside ``ledger_post_batch``, so
its two reads are asyncpg SQL, here and nowhere else.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db import driver
from timebank.points.models import PointsLot


async def open_lots(conn: AsyncConnection, account_id: uuid.UUID, limit: int) -> Sequence[Row[Any]]:
    """The account's lots with points left, soonest expiry first (the order they are spent in)."""
    query = (
        select(PointsLot)
        .where(PointsLot.account_id == account_id, PointsLot.remaining > 0)
        .order_by(PointsLot.expires_at, PointsLot.id)
        .limit(limit)
    )
    return (await conn.execute(query)).all()


async def accounts_with_expired_lots(
    raw: Any, community_id: uuid.UUID, now: datetime, after: uuid.UUID, limit: int
) -> list[uuid.UUID]:
    """Up to ``limit`` accounts (in id order, after ``after``) with points left in an expired lot."""
    rows = await raw.fetch(
        "SELECT DISTINCT account_id FROM points_lots WHERE community_id = $1 AND remaining > 0 "
        "AND expires_at <= $2 AND account_id > $3 ORDER BY account_id LIMIT $4",
        community_id,
        now,
        after,
        limit,
    )
    return [r["account_id"] for r in rows]


async def expired_points(raw: Any, account_ids: list[uuid.UUID], now: datetime) -> dict[uuid.UUID, int]:
    """{account: the points left in its lots expired at ``now``}."""
    rows = await raw.fetch(
        "SELECT account_id, sum(remaining) AS points FROM points_lots WHERE account_id = ANY($1::uuid[]) "
        "AND remaining > 0 AND expires_at <= $2 GROUP BY account_id ORDER BY account_id",
        account_ids,
        now,
    )
    return {r["account_id"]: int(r["points"]) for r in rows}


async def lots_expiring_between(
    conn: AsyncConnection, community_id: uuid.UUID, after: datetime, until: datetime
) -> Sequence[Row[Any]]:
    """The community's lots with points left whose expiry is in (``after``, ``until``]."""
    query = select(
        PointsLot.id, PointsLot.community_id, PointsLot.member_id, PointsLot.remaining, PointsLot.expires_at
    ).where(
        PointsLot.community_id == community_id,
        PointsLot.remaining > 0,
        PointsLot.expires_at > after,
        PointsLot.expires_at <= until,
    )
    return (await conn.execute(query)).all()


async def points_expiring_between(
    conn: AsyncConnection, community_id: uuid.UUID, after: datetime, until: datetime, split: datetime
) -> Row[Any]:
    """Of the community's lots with points left whose expiry is in (``after``, ``until``]
    (the lots ``lots_expiring_between`` gives): the points left in all and in those
    expiring by ``split``, and how many lots each. (Not how many members: a distinct
    count of 40,000 lots' members tripled the time.)"""
    soon = PointsLot.expires_at <= split
    query = select(
        func.coalesce(func.sum(PointsLot.remaining).filter(soon), 0).label("soon_points"),
        func.count().filter(soon).label("soon_lots"),
        func.coalesce(func.sum(PointsLot.remaining), 0).label("points"),
        func.count().label("lots"),
    ).where(
        PointsLot.community_id == community_id,
        PointsLot.remaining > 0,
        PointsLot.expires_at > after,
        PointsLot.expires_at <= until,
    )
    return (await conn.execute(query)).one()


async def name_points_lots(
    conn: AsyncConnection, lots: Sequence[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]
) -> None:
    """Name the service record of the points lots its credits made: (record, transaction, account) each.

    The database writes the lots as credits post (``points_follow_entry``, migration
    0004); the service record a lot came from is the approving package's to say.
    """
    await (await driver(conn)).execute(
        "UPDATE points_lots p SET record_id = l.record FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) "
        "AS l(record, tx, account) WHERE p.transaction_id = l.tx AND p.account_id = l.account",
        [x[0] for x in lots],
        [x[1] for x in lots],
        [x[2] for x in lots],
    )
