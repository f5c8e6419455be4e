"""Every SQL statement on the districts' tables, and the reads of other tables they join
(communities' names and kinds, the accounts of a district's ledger). Rows of other
packages' tables are written by their owners (``community.queries``, ``ledger.queries``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, any_, insert, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community import queries as community_queries
from timebank.community.models import Community, Party
from timebank.db import uuid_array
from timebank.districts.models import (
    Crossing,
    District,
    DistrictMember,
    DistrictSettlement,
    SettlementPart,
)
from timebank.ledger.models import Account

# --- districts and their members ---------------------------------------------------------


async def insert_district(
    conn: AsyncConnection, name: str, timezone: str, hour_limit: int, point_limit: int
) -> uuid.UUID:
    district_id = await community_queries.insert_community(conn, name, timezone, kind="district")
    await conn.execute(
        insert(District).values(
            id=district_id, default_hour_limit=hour_limit, default_point_limit=point_limit
        )
    )
    return district_id


async def district(conn: AsyncConnection, district_id: uuid.UUID) -> Row[Any] | None:
    stmt = (
        select(
            Community.id,
            Community.name,
            Community.timezone,
            Community.created_at,
            District.default_hour_limit,
            District.default_point_limit,
        )
        .join(District, District.id == Community.id)
        .where(Community.id == district_id)
    )
    return (await conn.execute(stmt)).first()


async def community(conn: AsyncConnection, community_id: uuid.UUID) -> Row[Any] | None:
    stmt = select(Community.id, Community.name, Community.kind).where(Community.id == community_id)
    return (await conn.execute(stmt)).first()


async def membership(
    conn: AsyncConnection, community_id: uuid.UUID, *, lock: bool = False
) -> Row[Any] | None:
    """The community's row in a district (asked, agreed or joined), or None."""
    stmt = select(DistrictMember).where(DistrictMember.community_id == community_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


async def memberships(conn: AsyncConnection, community_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Row[Any]]:
    """The rows of several communities (a crossing reads its two), share-locked in id
    order: their limits and points value cannot change until the crossing commits
    (``set_limits`` locks the row for update), while crossings do not wait on each other."""
    stmt = (
        select(DistrictMember)
        .where(DistrictMember.community_id == any_(uuid_array(community_ids)))
        .order_by(DistrictMember.community_id)
        .with_for_update(read=True)
    )
    return {r.community_id: r for r in (await conn.execute(stmt)).all()}


async def insert_membership(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(insert(DistrictMember).values(**values))


async def update_membership(conn: AsyncConnection, community_id: uuid.UUID, **values: Any) -> None:
    await conn.execute(
        update(DistrictMember).where(DistrictMember.community_id == community_id).values(**values)
    )


async def members_of(conn: AsyncConnection, district_id: uuid.UUID) -> list[Row[Any]]:
    """Every community that asked, was asked or joined, with its name, by name."""
    stmt = (
        select(DistrictMember, Community.name)
        .join(Community, Community.id == DistrictMember.community_id)
        .where(DistrictMember.district_id == district_id)
        .order_by(Community.name, Community.id)
    )
    return list((await conn.execute(stmt)).all())


async def insert_party(
    conn: AsyncConnection, district_id: uuid.UUID, name: str, community_id: uuid.UUID
) -> uuid.UUID:
    """The member community as a party of the district's ledger (written by its owner, ``community``)."""
    party = await community_queries.insert_party(conn, district_id, "community", name, str(community_id))
    return party.id


# --- accounts ----------------------------------------------------------------------------


async def position_accounts(
    conn: AsyncConnection, district_id: uuid.UUID
) -> dict[tuple[uuid.UUID, str], Row[Any]]:
    """{(community, asset): its position account in the district's ledger}."""
    stmt = (
        select(DistrictMember.community_id.label("member_community_id"), Account)
        .join(Account, Account.party_id == DistrictMember.party_id)
        .where(DistrictMember.district_id == district_id)
    )
    return {(r.member_community_id, r.asset): r for r in (await conn.execute(stmt)).all()}


async def account(conn: AsyncConnection, community_id: uuid.UUID, account_id: uuid.UUID) -> Row[Any] | None:
    stmt = (
        select(Account, Party.kind.label("party_kind"))
        .outerjoin(Party, Party.id == Account.party_id)
        .where(Account.id == account_id, Account.community_id == community_id)
    )
    return (await conn.execute(stmt)).first()


async def party_account(
    conn: AsyncConnection, community_id: uuid.UUID, party_id: uuid.UUID, asset: str
) -> Row[Any] | None:
    stmt = (
        select(Account, Party.kind.label("party_kind"))
        .join(Party, Party.id == Account.party_id)
        .where(Party.id == party_id, Party.community_id == community_id, Account.asset == asset)
    )
    return (await conn.execute(stmt)).first()


# --- crossings -----------------------------------------------------------------------------


async def insert_crossing(conn: AsyncConnection, **values: Any) -> Row[Any]:
    return (await conn.execute(insert(Crossing).values(**values).returning(Crossing))).one()


async def crossing(conn: AsyncConnection, crossing_id: uuid.UUID) -> Row[Any] | None:
    return (await conn.execute(select(Crossing).where(Crossing.id == crossing_id))).first()


async def crossing_of_transaction(conn: AsyncConnection, transaction_id: uuid.UUID) -> Row[Any] | None:
    stmt = select(Crossing).where(
        (Crossing.from_transaction_id == transaction_id)
        | (Crossing.to_transaction_id == transaction_id)
        | (Crossing.district_transaction_id == transaction_id)
    )
    return (await conn.execute(stmt)).first()


async def crossings_page(
    conn: AsyncConnection,
    community_id: uuid.UUID,
    account_ids: Sequence[uuid.UUID] | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Row[Any]]:
    """A community's crossings in and out, newest first; only those of ``account_ids`` if given."""
    involved = (Crossing.from_community_id == community_id) | (Crossing.to_community_id == community_id)
    stmt = select(Crossing).where(involved)
    if account_ids is not None:
        ids = uuid_array(account_ids)
        stmt = stmt.where((Crossing.from_account_id == any_(ids)) | (Crossing.to_account_id == any_(ids)))
    if before is not None:
        stmt = stmt.where(tuple_(Crossing.created_at, Crossing.id) < tuple_(*before))
    stmt = stmt.order_by(Crossing.created_at.desc(), Crossing.id.desc()).limit(limit)
    return list((await conn.execute(stmt)).all())


_FIGURES = text(
    """
    SELECT date_trunc('month', created_at AT TIME ZONE :tz)::date AS month,
           from_community_id, to_community_id, asset,
           count(*) AS crossings, sum(amount_sent) AS sent, sum(amount_received) AS received
      FROM crossings
     WHERE district_id = :d AND created_at >= :from AND created_at < :to
     GROUP BY 1, 2, 3, 4
     ORDER BY 1, 2, 3, 4
    """
)


async def crossing_figures(
    conn: AsyncConnection, district_id: uuid.UUID, tz: str, start: datetime, end: datetime
) -> list[Row[Any]]:
    """Crossings by month (in the district's zone), pair of communities and asset."""
    return list((await conn.execute(_FIGURES, {"d": district_id, "tz": tz, "from": start, "to": end})).all())


# --- settlements -----------------------------------------------------------------------------


async def insert_settlement(conn: AsyncConnection, **values: Any) -> Row[Any]:
    stmt = insert(DistrictSettlement).values(**values).returning(DistrictSettlement)
    return (await conn.execute(stmt)).one()


async def settlement(
    conn: AsyncConnection, district_id: uuid.UUID, settlement_id: uuid.UUID, *, lock: bool = False
) -> Row[Any] | None:
    stmt = select(DistrictSettlement).where(
        DistrictSettlement.id == settlement_id, DistrictSettlement.district_id == district_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


async def settlements(conn: AsyncConnection, district_id: uuid.UUID, limit: int = 50) -> list[Row[Any]]:
    stmt = (
        select(DistrictSettlement)
        .where(DistrictSettlement.district_id == district_id)
        .order_by(DistrictSettlement.proposed_at.desc(), DistrictSettlement.id)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).all())


async def update_settlement(conn: AsyncConnection, settlement_id: uuid.UUID, **values: Any) -> None:
    await conn.execute(
        update(DistrictSettlement).where(DistrictSettlement.id == settlement_id).values(**values)
    )


async def insert_settlement_parts(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(SettlementPart), rows)


async def settlement_parts(conn: AsyncConnection, settlement_id: uuid.UUID) -> list[Row[Any]]:
    stmt = (
        select(SettlementPart)
        .where(SettlementPart.settlement_id == settlement_id)
        .order_by(SettlementPart.community_id)
    )
    return list((await conn.execute(stmt)).all())
