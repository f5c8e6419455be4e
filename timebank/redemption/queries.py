"""Every read and write of the rewards, redemption_counts and redemptions tables.

One way throughout: SQLAlchemy Core statements (``select()``, ``insert()``,
``update()``) built on the SQLModel tables of ``models.py`` and run on an
``AsyncConnection``; each returns typed ``Row`` objects whose attributes are the
model's columns (no ORM session, no identity map: the rows are read under the locks
the services take). The services never write SQL of their own; other packages ask
this module (and the services) rather than reading these tables.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Row, and_, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.redemption.models import Redemption, RedemptionCount, Reward

RewardRow = Row[Any]
RedemptionRow = Row[Any]


async def db_now(conn: AsyncConnection) -> datetime:
    """The database's time (the time of the transaction), the one every rule uses."""
    return (await conn.execute(select(func.now()))).scalar_one()


async def _after(
    conn: AsyncConnection, query: Any, model: Any, after: uuid.UUID, *, newest_first: bool
) -> Any:
    """``query`` limited to the rows after the row ``after`` in (created_at, id) order, or
    None when there is no such row (an unknown cursor: an empty page)."""
    anchor = (await conn.execute(select(model.created_at, model.id).where(model.id == after))).first()
    if anchor is None:
        return None
    key = tuple_(model.created_at, model.id)
    return query.where(key < tuple_(*anchor) if newest_first else key > tuple_(*anchor))


# --- rewards ---------------------------------------------------------------------------------


async def find_reward(
    conn: AsyncConnection, community_id: uuid.UUID, reward_id: uuid.UUID, *, lock: bool = False
) -> RewardRow | None:
    query = select(Reward).where(Reward.id == reward_id, Reward.community_id == community_id)
    return (await conn.execute(query.with_for_update() if lock else query)).first()


async def reward_anywhere(conn: AsyncConnection, reward_id: uuid.UUID) -> RewardRow | None:
    """A reward of any community (the caller decides whether the asker may see it)."""
    return (await conn.execute(select(Reward).where(Reward.id == reward_id))).first()


async def insert_reward(conn: AsyncConnection, values: dict[str, Any]) -> RewardRow:
    return (await conn.execute(insert(Reward).values(**values).returning(Reward))).one()


async def update_reward(
    conn: AsyncConnection, reward_id: uuid.UUID, columns: dict[str, Any], *, deactivate: bool
) -> RewardRow:
    values = {**columns, "updated_at": func.now(), **({"active": False} if deactivate else {})}
    return (
        await conn.execute(update(Reward).where(Reward.id == reward_id).values(**values).returning(Reward))
    ).one()


async def rewards_page(
    conn: AsyncConnection,
    community_id: uuid.UUID,
    *,
    merchant_id: uuid.UUID | None,
    active: bool | None,
    after: uuid.UUID | None,
    limit: int,
) -> Sequence[RewardRow]:
    """Up to ``limit`` rewards, oldest first, after the reward ``after`` (none if it is unknown)."""
    query = select(Reward).where(Reward.community_id == community_id)
    if merchant_id is not None:
        query = query.where(Reward.merchant_id == merchant_id)
    if active is not None:
        query = query.where(Reward.active == active)
    if after is not None:
        query = await _after(conn, query, Reward, after, newest_first=False)
        if query is None:
            return []
    return (await conn.execute(query.order_by(Reward.created_at, Reward.id).limit(limit))).all()


def _period_start(period: Any, timezone: str) -> Any:
    """``reward_period_start`` (migration 0004): the first local day of the limit period now."""
    return func.reward_period_start(period, timezone, func.now(), type_=Date)


async def used_now(
    conn: AsyncConnection, member_id: uuid.UUID, reward_ids: list[uuid.UUID], timezone: str
) -> dict[uuid.UUID, int]:
    """For each reward, the units the member took in its current limit period."""
    query = (
        select(Reward.id, RedemptionCount.used)
        .join(
            RedemptionCount,
            and_(
                RedemptionCount.reward_id == Reward.id,
                RedemptionCount.member_id == member_id,
                RedemptionCount.period_start == _period_start(Reward.limit_period, timezone),
            ),
        )
        .where(Reward.id.in_(reward_ids))
    )
    return {r.id: r.used for r in await conn.execute(query)}


async def period_now(
    conn: AsyncConnection, period: str | None, timezone: str
) -> tuple[datetime, date | None]:
    """The database's time, and the first day of the limit period it falls in (None: no limit)."""
    if period is None:
        return await db_now(conn), None
    now, start = (await conn.execute(select(func.now(), _period_start(period, timezone)))).one()
    return now, start


async def used_in(conn: AsyncConnection, reward_id: uuid.UUID, member_id: uuid.UUID, start: date) -> int:
    used = (
        await conn.execute(
            select(RedemptionCount.used).where(
                RedemptionCount.reward_id == reward_id,
                RedemptionCount.member_id == member_id,
                RedemptionCount.period_start == start,
            )
        )
    ).scalar_one_or_none()
    return used or 0


async def take_unit(conn: AsyncConnection, reward_id: uuid.UUID) -> bool:
    """One unit of stock moves to held, if there is one (stock NULL: unlimited)."""
    taken = await conn.execute(
        update(Reward)
        .where(Reward.id == reward_id, or_(Reward.stock.is_(None), Reward.stock > 0))
        .values(stock=Reward.stock - 1, held=Reward.held + 1)
        .returning(Reward.id)
    )
    return taken.first() is not None


async def count_toward_limit(
    conn: AsyncConnection, reward_id: uuid.UUID, member_id: uuid.UUID, start: date, limit: int
) -> bool:
    """One more unit in the member's period count, if it stays within ``limit``."""
    statement = upsert(RedemptionCount).values(
        reward_id=reward_id,
        member_id=member_id,
        period_start=start,
        used=1,
        community_id=select(Reward.community_id).where(Reward.id == reward_id).scalar_subquery(),
    )
    counted = await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["reward_id", "member_id", "period_start", "community_id"],
            set_={"used": RedemptionCount.used + 1},
            where=RedemptionCount.used < limit,
        ).returning(RedemptionCount.used)
    )
    return counted.first() is not None


async def post_unit(conn: AsyncConnection, reward_id: uuid.UUID) -> None:
    """A held unit is redeemed (its redemption was confirmed)."""
    await conn.execute(
        update(Reward)
        .where(Reward.id == reward_id)
        .values(held=Reward.held - 1, redeemed=Reward.redeemed + 1)
    )


async def release_unit(conn: AsyncConnection, row: RedemptionRow) -> None:
    """Give back the unit of stock and the count toward the limit a held redemption took."""
    await conn.execute(  # stock NULL (unlimited) stays NULL
        update(Reward).where(Reward.id == row.reward_id).values(stock=Reward.stock + 1, held=Reward.held - 1)
    )
    if row.period_start is not None:
        await conn.execute(
            update(RedemptionCount)
            .where(
                RedemptionCount.reward_id == row.reward_id,
                RedemptionCount.member_id == row.member_id,
                RedemptionCount.period_start == row.period_start,
            )
            .values(used=RedemptionCount.used - 1)
        )


# --- redemptions -----------------------------------------------------------------------------


async def nonce_used(conn: AsyncConnection, nonce: str) -> bool:
    return (
        await conn.execute(select(Redemption.id).where(Redemption.token_nonce == nonce))
    ).first() is not None


async def insert_redemption(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(Redemption).values(**values))


def _with_title() -> Any:
    return select(Redemption, Reward.title).join(Reward, Reward.id == Redemption.reward_id)


def _of(community_id: uuid.UUID) -> Any:
    """A redemption is the merchant's community's and the member's (the same one at home)."""
    return or_(Redemption.community_id == community_id, Redemption.member_community_id == community_id)


async def redemption_of_transaction(
    conn: AsyncConnection, community_id: uuid.UUID, tx_id: uuid.UUID
) -> RedemptionRow | None:
    """The redemption whose hold or resolution is ``tx_id``, with its reward's title."""
    query = _with_title().where(
        _of(community_id),
        or_(Redemption.hold_id == tx_id, Redemption.resolution_id == tx_id),
    )
    return (await conn.execute(query)).first()


async def find_redemption(
    conn: AsyncConnection, community_id: uuid.UUID, redemption_id: uuid.UUID
) -> RedemptionRow | None:
    query = _with_title().where(Redemption.id == redemption_id, _of(community_id))
    return (await conn.execute(query)).first()


async def open_voucher(
    conn: AsyncConnection, community_id: uuid.UUID, merchant_id: uuid.UUID | None, code: str
) -> RedemptionRow | None:
    query = _with_title().where(
        Redemption.community_id == community_id,
        Redemption.code == code,
        Redemption.status == "held",
        Redemption.merchant_id == merchant_id,
    )
    return (await conn.execute(query)).first()


async def member_redemptions_page(
    conn: AsyncConnection, community_id: uuid.UUID, member_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> Sequence[RedemptionRow]:
    """Up to ``limit`` of the member's redemptions (at home and at other communities'
    merchants), newest first, after ``after`` (none if unknown)."""
    query = _with_title().where(
        Redemption.member_community_id == community_id, Redemption.member_id == member_id
    )
    if after is not None:
        query = await _after(conn, query, Redemption, after, newest_first=True)
        if query is None:
            return []
    order = (Redemption.created_at.desc(), Redemption.id.desc())
    return (await conn.execute(query.order_by(*order).limit(limit))).all()


async def lock_redemption(
    conn: AsyncConnection, community_id: uuid.UUID, redemption_id: uuid.UUID
) -> RedemptionRow | None:
    query = select(Redemption).where(Redemption.id == redemption_id, _of(community_id))
    return (await conn.execute(query.with_for_update())).first()


async def lock_due(conn: AsyncConnection, community_id: uuid.UUID, limit: int) -> Sequence[RedemptionRow]:
    """Held redemptions past their expiry whose hold is in this community's ledger (the
    member's), skipping those another process has locked."""
    query = (
        select(Redemption)
        .where(
            Redemption.member_community_id == community_id,
            Redemption.status == "held",
            Redemption.expires_at <= func.now(),
        )
        .order_by(Redemption.expires_at, Redemption.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await conn.execute(query)).all()


async def resolve(
    conn: AsyncConnection, redemption_id: uuid.UUID, status: str, tx_id: uuid.UUID | None, by: uuid.UUID
) -> None:
    await conn.execute(
        update(Redemption)
        .where(Redemption.id == redemption_id)
        .values(status=status, resolution_id=tx_id, resolved_by=by, resolved_at=func.now())
    )


async def confirmed_between(
    conn: AsyncConnection, community_id: uuid.UUID, merchant_id: uuid.UUID, start: datetime, end: datetime
) -> Sequence[RedemptionRow]:
    """A merchant's confirmed redemptions in [start, end), in order of confirmation."""
    query = (
        select(
            Redemption.id,
            Redemption.resolved_at,
            Redemption.reward_id,
            Reward.title,
            Redemption.member_id,
            Redemption.price_points,
            Redemption.paid_points,
            Redemption.rate_from,
            Redemption.rate_to,
            Redemption.member_community_id,
            Redemption.resolution_id,
        )
        .join(Reward, Reward.id == Redemption.reward_id)
        .where(
            Redemption.merchant_id == merchant_id,
            Redemption.community_id == community_id,
            Redemption.status == "confirmed",
            Redemption.resolved_at >= start,
            Redemption.resolved_at < end,
        )
        .order_by(Redemption.resolved_at, Redemption.id)
    )
    return (await conn.execute(query)).all()
