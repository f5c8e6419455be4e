"""Every read and write of the community package's tables, for it and for others.

The community package owns ``communities``, ``parties`` and ``api_keys``; other
packages ask here whether a member exists or which parties of a kind a community
has, instead of querying those tables themselves.

One way of reading throughout (as in ``timebank.ledger.queries``): typed SQLAlchemy
Core statements on the SQLModel table classes, executed on an ``AsyncConnection``,
returning ``Row`` objects whose attributes are the model's columns.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import Row, any_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community.models import ApiKey, Community, Party
from timebank.db import text_array, uuid_array

# --- communities -----------------------------------------------------------------------


async def insert_community(
    conn: AsyncConnection, name: str, timezone: str, kind: str = "community"
) -> uuid.UUID:
    """A ledger of a community, or of a district (``kind``)."""
    stmt = insert(Community).values(name=name, timezone=timezone, kind=kind).returning(Community.id)
    return (await conn.execute(stmt)).scalar_one()


async def community_by_id(conn: AsyncConnection, community_id: uuid.UUID) -> Row[Any]:
    return (await conn.execute(select(Community).where(Community.id == community_id))).one()


async def all_communities(conn: AsyncConnection) -> list[Row[Any]]:
    """Every community's id and time zone, by id (the scheduled jobs run per community;
    a district's ledger has no members, policy or activities, so it is not among them)."""
    stmt = (
        select(Community.id, Community.timezone).where(Community.kind == "community").order_by(Community.id)
    )
    return list((await conn.execute(stmt)).all())


async def all_ledgers(conn: AsyncConnection) -> list[Row[Any]]:
    """Every ledger's id and time zone, communities' and districts' alike (each has a
    transparency log to integrate and audit)."""
    return list((await conn.execute(select(Community.id, Community.timezone).order_by(Community.id))).all())


async def ledger_kind(conn: AsyncConnection, community_id: uuid.UUID) -> str | None:
    """'community' or 'district' (whose own ledger it is), None when there is none."""
    stmt = select(Community.kind).where(Community.id == community_id)
    return (await conn.execute(stmt)).scalar_one_or_none()


# --- parties ---------------------------------------------------------------------------


async def insert_party(
    conn: AsyncConnection, community_id: uuid.UUID, kind: str, name: str, external_ref: str | None
) -> Row[Any]:
    stmt = (
        insert(Party)
        .values(community_id=community_id, kind=kind, display_name=name, external_ref=external_ref)
        .returning(*Party.__table__.c)
    )
    return (await conn.execute(stmt)).one()


async def party_in_community(
    conn: AsyncConnection, community_id: uuid.UUID, party_id: uuid.UUID, kind: str | None = None
) -> Row[Any] | None:
    """The community's party ``party_id`` (of ``kind``, if given), or None."""
    stmt = select(Party).where(Party.id == party_id, Party.community_id == community_id)
    if kind is not None:
        stmt = stmt.where(Party.kind == kind)
    return (await conn.execute(stmt)).first()


async def party_exists(
    conn: AsyncConnection, community_id: uuid.UUID, party_id: uuid.UUID, kind: str
) -> bool:
    """Is ``party_id`` a party of ``kind`` (e.g. a member) in the community?"""
    stmt = select(Party.id).where(
        Party.id == party_id, Party.community_id == community_id, Party.kind == kind
    )
    return (await conn.execute(stmt)).first() is not None


async def parties_of_kind(
    conn: AsyncConnection,
    community_id: uuid.UUID,
    kind: str,
    ids: Collection[uuid.UUID] = (),
    external_refs: Collection[str] = (),
) -> list[Row[Any]]:
    """(id, external_ref) of the community's parties of ``kind`` among ``ids`` or ``external_refs``."""
    if not ids and not external_refs:
        return []
    stmt = select(Party.id, Party.external_ref).where(
        Party.community_id == community_id,
        Party.kind == kind,
        or_(Party.id == any_(uuid_array(ids)), Party.external_ref == any_(text_array(external_refs))),
    )
    return list((await conn.execute(stmt)).all())


async def lock_parties(conn: AsyncConnection, ids: Iterable[uuid.UUID]) -> None:
    """Row locks on parties, in id order (so two lockers never deadlock)."""
    stmt = select(Party.id).where(Party.id == any_(uuid_array(ids))).order_by(Party.id).with_for_update()
    await conn.execute(stmt)


async def display_names(conn: AsyncConnection, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    stmt = select(Party.id, Party.display_name).where(Party.id == any_(uuid_array(set(ids))))
    return {r.id: r.display_name for r in await conn.execute(stmt)}


async def names_in_community(
    conn: AsyncConnection, community_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The display names of the community's parties among ``ids`` (others are left out)."""
    stmt = select(Party.id, Party.display_name).where(
        Party.id == any_(uuid_array(set(ids))), Party.community_id == community_id
    )
    return {r.id: r.display_name for r in await conn.execute(stmt)}


async def parties_page(
    conn: AsyncConnection, community_id: uuid.UUID, kind: str, after: uuid.UUID | None, n: int
) -> list[Row[Any]]:
    """The community's parties of ``kind`` with id above ``after``, by id."""
    stmt = select(Party).where(Party.community_id == community_id, Party.kind == kind)
    if after is not None:
        stmt = stmt.where(Party.id > after)
    return list((await conn.execute(stmt.order_by(Party.id).limit(n))).all())


async def search_parties(
    conn: AsyncConnection, community_id: uuid.UUID, kind: str, text: str, after: uuid.UUID | None, n: int
) -> list[Row[Any]]:
    """The community's parties of ``kind`` whose name or external_ref contains ``text``
    (any case), with id above ``after``, by id."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    stmt = select(Party).where(
        Party.community_id == community_id,
        Party.kind == kind,
        or_(Party.display_name.ilike(pattern, escape="\\"), Party.external_ref.ilike(pattern, escape="\\")),
    )
    if after is not None:
        stmt = stmt.where(Party.id > after)
    return list((await conn.execute(stmt.order_by(Party.id).limit(n))).all())


async def update_party(
    conn: AsyncConnection, community_id: uuid.UUID, party_id: uuid.UUID, kind: str, **values: Any
) -> Row[Any] | None:
    """Change the community's party ``party_id`` of ``kind`` (columns as keywords); the
    row as it is now, or None if there is no such party."""
    stmt = (
        update(Party)
        .where(Party.id == party_id, Party.community_id == community_id, Party.kind == kind)
        .values(**values)
        .returning(*Party.__table__.c)
    )
    return (await conn.execute(stmt)).first()


# --- API keys --------------------------------------------------------------------------


# Built once: every request whose key is not cached runs it.
_ACTIVE_KEY = select(ApiKey.id, ApiKey.community_id, ApiKey.role, ApiKey.subject_id).where(
    ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None)
)


async def active_key(conn: AsyncConnection, key_hash: bytes) -> Row[Any] | None:
    """The unrevoked key with this hash (id, community, role, subject), or None."""
    return (await conn.execute(_ACTIVE_KEY, {"key_hash": key_hash})).first()


async def insert_key(conn: AsyncConnection, **values: Any) -> Row[Any]:
    """A new key (columns of ``api_keys`` as keywords); its id and creation time."""
    stmt = insert(ApiKey).values(**values).returning(ApiKey.id, ApiKey.created_at)
    return (await conn.execute(stmt)).one()


async def keys_of_community(conn: AsyncConnection, community_id: uuid.UUID) -> list[Row[Any]]:
    stmt = select(ApiKey).where(ApiKey.community_id == community_id).order_by(ApiKey.created_at, ApiKey.id)
    return list((await conn.execute(stmt)).all())


async def lock_active_admin_keys(conn: AsyncConnection, community_id: uuid.UUID) -> list[uuid.UUID]:
    """Lock the community's unrevoked admin keys (in id order) and answer their ids."""
    stmt = (
        select(ApiKey.id)
        .where(
            ApiKey.community_id == community_id,
            ApiKey.role.in_(["admin", "district_admin"]),
            ApiKey.revoked_at.is_(None),
        )
        .order_by(ApiKey.id)
        .with_for_update()
    )
    return list((await conn.execute(stmt)).scalars())


async def key_in_community(
    conn: AsyncConnection, community_id: uuid.UUID, key_id: uuid.UUID
) -> Row[Any] | None:
    stmt = select(ApiKey.role, ApiKey.revoked_at).where(
        ApiKey.id == key_id, ApiKey.community_id == community_id
    )
    return (await conn.execute(stmt)).first()


async def revoke_key(conn: AsyncConnection, key_id: uuid.UUID) -> None:
    await conn.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=func.now()))
