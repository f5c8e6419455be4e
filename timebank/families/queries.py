"""Every SQL statement on family links, grants and the record of acting for someone
(and the names of the people and communities they show)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, any_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community.models import Community, Party
from timebank.db import uuid_array
from timebank.families.models import FamilyGrant, FamilyLink, ProxyAction


async def db_now(conn: AsyncConnection) -> datetime:
    return (await conn.execute(select(func.now()))).scalar_one()


# --- links ---------------------------------------------------------------------------------


async def insert_link(conn: AsyncConnection, **values: Any) -> Row[Any]:
    return (await conn.execute(insert(FamilyLink).values(**values).returning(FamilyLink))).one()


async def link(conn: AsyncConnection, link_id: uuid.UUID, *, lock: str | None = None) -> Row[Any] | None:
    """A link; ``lock`` "update" (to change it) or "share" (to act under it: a change waits)."""
    stmt = select(FamilyLink).where(FamilyLink.id == link_id)
    if lock == "update":
        stmt = stmt.with_for_update()
    elif lock == "share":
        stmt = stmt.with_for_update(read=True)
    return (await conn.execute(stmt)).first()


async def open_offer_by_code(conn: AsyncConnection, code_hash: bytes) -> Row[Any] | None:
    """The unanswered, not withdrawn offer with this family code, locked."""
    stmt = (
        select(FamilyLink)
        .where(
            FamilyLink.code_hash == code_hash,
            FamilyLink.member_b.is_(None),
            FamilyLink.ended_at.is_(None),
        )
        .with_for_update()
    )
    return (await conn.execute(stmt)).first()


async def update_link(conn: AsyncConnection, link_id: uuid.UUID, **values: Any) -> Row[Any]:
    stmt = update(FamilyLink).where(FamilyLink.id == link_id).values(**values).returning(FamilyLink)
    return (await conn.execute(stmt)).one()


async def link_between(conn: AsyncConnection, one: uuid.UUID, other: uuid.UUID) -> Row[Any] | None:
    """The not-ended, answered link of two members, whoever asked."""
    stmt = select(FamilyLink).where(
        FamilyLink.ended_at.is_(None),
        or_(
            and_(FamilyLink.member_a == one, FamilyLink.member_b == other),
            and_(FamilyLink.member_a == other, FamilyLink.member_b == one),
        ),
    )
    return (await conn.execute(stmt)).first()


async def open_offers(conn: AsyncConnection, member_id: uuid.UUID) -> int:
    """The member's offers nobody answered yet, not withdrawn and not expired."""
    stmt = select(func.count()).where(
        FamilyLink.member_a == member_id,
        FamilyLink.member_b.is_(None),
        FamilyLink.ended_at.is_(None),
        FamilyLink.code_expires_at > func.now(),
    )
    return (await conn.execute(stmt)).scalar_one()


def _newest_first(stmt: Any, limit: int) -> Any:
    return stmt.order_by(FamilyLink.created_at.desc(), FamilyLink.id.desc()).limit(limit)


async def links_of_member(conn: AsyncConnection, member_id: uuid.UUID, limit: int) -> list[Row[Any]]:
    """The member's links and offers, newest first."""
    stmt = select(FamilyLink).where(or_(FamilyLink.member_a == member_id, FamilyLink.member_b == member_id))
    return list((await conn.execute(_newest_first(stmt, limit))).all())


async def links_of_community(conn: AsyncConnection, community_id: uuid.UUID, limit: int) -> list[Row[Any]]:
    """The links of the community's members that a relative answered (both consents
    given, or more), newest first: the staff's to confirm, or confirmed."""
    stmt = select(FamilyLink).where(
        FamilyLink.member_b.is_not(None),
        or_(FamilyLink.community_a == community_id, FamilyLink.community_b == community_id),
    )
    return list((await conn.execute(_newest_first(stmt, limit))).all())


async def people(conn: AsyncConnection, member_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Row[Any]]:
    """{member: (display_name, community_id, community_name)} of members (of any community)."""
    ids = sorted(set(member_ids))
    if not ids:
        return {}
    stmt = (
        select(Party.id, Party.display_name, Party.community_id, Community.name.label("community_name"))
        .join(Community, Community.id == Party.community_id)
        .where(Party.id == any_(uuid_array(ids)), Party.kind == "member")
    )
    return {r.id: r for r in (await conn.execute(stmt)).all()}


async def member_in(conn: AsyncConnection, community_id: uuid.UUID, member_id: uuid.UUID) -> bool:
    stmt = select(Party.id).where(
        Party.id == member_id, Party.community_id == community_id, Party.kind == "member"
    )
    return (await conn.execute(stmt)).first() is not None


async def party_in(conn: AsyncConnection, community_id: uuid.UUID, party_id: uuid.UUID) -> Row[Any] | None:
    stmt = select(Party.id, Party.kind, Party.display_name).where(
        Party.id == party_id, Party.community_id == community_id
    )
    return (await conn.execute(stmt)).first()


async def community_kind(conn: AsyncConnection, community_id: uuid.UUID) -> str | None:
    stmt = select(Community.kind).where(Community.id == community_id)
    return (await conn.execute(stmt)).scalar_one_or_none()


# --- grants ------------------------------------------------------------------------------------


async def grants(conn: AsyncConnection, link_ids: Sequence[uuid.UUID]) -> list[Row[Any]]:
    """The grants in force (not revoked) of these links."""
    if not link_ids:
        return []
    stmt = (
        select(FamilyGrant)
        .where(FamilyGrant.link_id == any_(uuid_array(link_ids)), FamilyGrant.revoked_at.is_(None))
        .order_by(FamilyGrant.link_id, FamilyGrant.grantor, FamilyGrant.action)
    )
    return list((await conn.execute(stmt)).all())


async def granted(conn: AsyncConnection, link_id: uuid.UUID, grantor: uuid.UUID, action: str) -> bool:
    stmt = select(FamilyGrant.action).where(
        FamilyGrant.link_id == link_id,
        FamilyGrant.grantor == grantor,
        FamilyGrant.action == action,
        FamilyGrant.revoked_at.is_(None),
    )
    return (await conn.execute(stmt)).first() is not None


async def grant(conn: AsyncConnection, link_id: uuid.UUID, grantor: uuid.UUID, action: str) -> None:
    """Grant an action (again, if it was revoked); a grant in force stays as it is."""
    stmt = pg_insert(FamilyGrant).values(link_id=link_id, grantor=grantor, action=action)
    stmt = stmt.on_conflict_do_update(
        index_elements=[FamilyGrant.link_id, FamilyGrant.grantor, FamilyGrant.action],
        set_={"granted_at": func.now(), "revoked_at": None},
        where=FamilyGrant.revoked_at.is_not(None),
    )
    await conn.execute(stmt)


async def revoke(
    conn: AsyncConnection, link_id: uuid.UUID, grantor: uuid.UUID | None, keep: Sequence[str] = ()
) -> None:
    """Revoke the grantor's grants in force (every grantor's when None), but those in ``keep``."""
    stmt = update(FamilyGrant).where(FamilyGrant.link_id == link_id, FamilyGrant.revoked_at.is_(None))
    if grantor is not None:
        stmt = stmt.where(FamilyGrant.grantor == grantor)
    if keep:
        stmt = stmt.where(FamilyGrant.action.not_in(list(keep)))
    await conn.execute(stmt.values(revoked_at=func.now()))


# --- the record of acting for someone ------------------------------------------------------------


async def insert_proxy_action(conn: AsyncConnection, **values: Any) -> Row[Any]:
    return (await conn.execute(insert(ProxyAction).values(**values).returning(ProxyAction))).one()


async def proxy_actions(
    conn: AsyncConnection, link_id: uuid.UUID, members: Sequence[uuid.UUID], before: int | None, limit: int
) -> list[Row[Any]]:
    """What was done under a link (for one of its ``members``: the index), newest first."""
    stmt = select(ProxyAction).where(
        ProxyAction.for_member_id == any_(uuid_array(members)), ProxyAction.link_id == link_id
    )
    if before is not None:
        stmt = stmt.where(ProxyAction.id < before)
    stmt = stmt.order_by(ProxyAction.id.desc()).limit(limit)
    return list((await conn.execute(stmt)).all())


async def proxy_action_of_transaction(
    conn: AsyncConnection, for_member_id: uuid.UUID, transaction_id: uuid.UUID
) -> Row[Any] | None:
    stmt = select(ProxyAction).where(
        ProxyAction.for_member_id == for_member_id, ProxyAction.transaction_id == transaction_id
    )
    return (await conn.execute(stmt)).first()
